"""mmsd.data.dataset over the session cache that conftest.py prepares (CRF 15 and 40, HR every 2nd frame)."""

import json
import shutil

import numpy as np
import pytest
import torch
from conftest import CSV_CLIP_KEY, GOOD_CLIPS
from numpy.lib.stride_tricks import sliding_window_view

from mmsd.data.dataset import Batch, CacheDataset, ClipIndex, ClipMeta, collate, read_index, window_indices
from mmsd.data.degrade import downsample


def _uint8(x: torch.Tensor) -> np.ndarray:
    """(..., 3, H, W) float [0, 1] -> (..., H, W, 3) uint8, exactly inverting the dataset's /255."""
    return (x * 255).round().to(torch.uint8).movedim(-3, -1).numpy()


def _item(ds: CacheDataset, key: str, crf: int, t: int) -> int:
    return next(i for i in range(len(ds)) if ds[i].key == f"{key}#crf{crf}@t{t}")


def test_clip_index_lists_labels_and_bitrates(prepared_cache):
    index = ClipIndex(prepared_cache)
    assert [c.key for c in index] == sorted(GOOD_CLIPS)
    clip = index.select([1])[1]
    assert clip.key == CSV_CLIP_KEY
    assert (clip.actor, clip.emotion, clip.statement, clip.repetition, clip.channel) == (1, 4, 1, 1, 1)
    assert set(clip.kbps) == {15, 40} and clip.kbps[15] > clip.kbps[40] > 0
    assert [c.actor for c in index.select([19])] == [19, 19]
    assert read_index(prepared_cache) == index.clips


def test_clip_finds_its_source_video_until_it_is_gone(prepared_cache, fixture_corpus, tmp_path):
    clip = ClipIndex(prepared_cache).select([1])[1]
    assert clip.find_source() == fixture_corpus / f"{CSV_CLIP_KEY}.mp4"
    copy = tmp_path / "cache" / clip.key  # the same meta.json, its source path recorded relative to elsewhere
    shutil.copytree(clip.path, copy)
    meta = json.loads((copy / "meta.json").read_text())
    (copy / "meta.json").write_text(json.dumps({**meta, "source": f"gone/{CSV_CLIP_KEY}.mp4"}))
    moved = ClipMeta.load(copy)
    assert moved.source.startswith("gone/") and moved.find_source() is None


def test_whole_frame_samples_have_the_documented_shapes_types_and_ranges(prepared_cache):
    ds = CacheDataset(prepared_cache, actors=None)
    assert len(ds) == 4 * 2 * 6  # clips x CRFs x centre frames with HR
    s = ds[0]
    assert s.lr.shape == (5, 3, 72, 120) and s.lr.dtype == torch.float32
    assert s.hr.shape == (3, 288, 480) and s.hr.dtype == torch.float32
    assert 0 <= s.lr.min() and s.lr.max() <= 1 and 0 <= s.hr.min() and s.hr.max() <= 1
    assert s.mfcc.shape == (5, 4, 20) and s.mfcc.dtype == torch.float32
    assert s.au.shape == (17,) and s.au.dtype == torch.float32 and isinstance(s.au_mask, bool)
    assert s.face_box.shape == s.mouth_box.shape == (4,) and s.face_box.dtype == torch.int64
    assert isinstance(s.emotion, int) and 0 <= s.emotion < 15 and s.crf in (15, 40)
    assert s.key == f"{sorted(GOOD_CLIPS)[0]}#crf15@t0"
    assert s.crop.tolist() == [0.0, 0.0, 1.0, 1.0] and s.crop.dtype == torch.float32
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_filters_actor_crf_and_frame_step(prepared_cache):
    ds = CacheDataset(prepared_cache, actors=[19], crfs=[40], frame_step=3)
    assert [s.key.split("#")[1] for s in (ds[i] for i in range(len(ds)))] == ["crf40@t0", "crf40@t6"] * 2
    assert {ds[i].key.split("#")[0] for i in range(len(ds))} == {k for k in GOOD_CLIPS if k.startswith("Actor_19")}
    with pytest.raises(ValueError, match=r"CRFs \[32\] not all in the cache"):
        CacheDataset(prepared_cache, actors=None, crfs=[32])
    with pytest.raises(ValueError, match="patch must be in 1..72"):
        CacheDataset(prepared_cache, actors=None, patch=80)
    with pytest.raises(ValueError, match="no clips of actors"):
        CacheDataset(prepared_cache, actors=[5])
    held_out = CacheDataset(prepared_cache, actors=[1, 19], keys=[CSV_CLIP_KEY, "Actor_05/none"], crfs=[15])
    assert {held_out[i].key.split("#")[0] for i in range(len(held_out))} == {CSV_CLIP_KEY}
    with pytest.raises(ValueError, match="no clips of actors \\[19\\] and 1 keys"):
        CacheDataset(prepared_cache, actors=[19], keys=[CSV_CLIP_KEY])


def test_windows_are_edge_replicated_centred_or_causal(prepared_cache):
    assert window_indices(0, 2, 12).tolist() == [0, 0, 0, 1, 2]
    assert window_indices(11, 2, 12).tolist() == [9, 10, 11, 11, 11]
    assert window_indices(1, 2, 12, causal=True).tolist() == [0, 0, 0, 0, 1]
    index = ClipIndex(prepared_cache)
    reader = index.reader(CSV_CLIP_KEY)
    for causal, t, frames in [(False, 0, [0, 0, 0, 1, 2]), (False, 10, [8, 9, 10, 11, 11]), (True, 4, [0, 1, 2, 3, 4])]:
        ds = CacheDataset(index, actors=[1], crfs=[40], causal=causal)
        s = ds[_item(ds, CSV_CLIP_KEY, 40, t)]
        np.testing.assert_array_equal(_uint8(s.lr), reader.lr(40, frames))
        np.testing.assert_array_equal(s.mfcc.numpy(), reader.arrays["mfcc"][frames])
        np.testing.assert_array_equal(_uint8(s.hr), reader.hr(t))
        np.testing.assert_array_equal(s.au.numpy(), reader.arrays["au"][t])
        assert s.au_mask and s.emotion == 4
    radius1 = CacheDataset(index, actors=[1], radius=1)
    assert radius1[0].lr.shape[0] == 3 and radius1[0].mfcc.shape[0] == 3


def _find(patch: np.ndarray, frame: np.ndarray) -> tuple[int, int]:
    """The (y, x) where patch (p, p, 3) occurs exactly in frame (H, W, 3)."""
    views = sliding_window_view(frame, patch.shape)[:, :, 0]  # (H-p+1, W-p+1, p, p, 3)
    hits = np.argwhere((views == patch).all(axis=(2, 3, 4)))
    assert len(hits) == 1, f"patch found {len(hits)} times"
    return tuple(int(v) for v in hits[0])


def test_training_crops_are_aligned_and_boxes_follow(prepared_cache):
    index = ClipIndex(prepared_cache)
    whole = CacheDataset(index, actors=None, crfs=[15])
    p = 16
    crops = CacheDataset(index, actors=None, crfs=[15], patch=p, seed=3)
    for i in range(0, len(crops), 5):
        s, w = crops[i], whole[i]
        assert s.key == w.key
        assert s.lr.shape == (5, 3, p, p) and s.hr.shape == (3, 4 * p, 4 * p)
        lr, lr_whole = _uint8(s.lr), _uint8(w.lr)
        y, x = _find(lr[2], lr_whole[2])  # where the centre LR crop came from
        assert (y, x) == crops.crop_origin(i)
        np.testing.assert_array_equal(lr, lr_whole[:, y : y + p, x : x + p])  # all 2N+1 frames, same window
        hr = _uint8(s.hr)
        np.testing.assert_array_equal(hr, _uint8(w.hr)[4 * y : 4 * (y + p), 4 * x : 4 * (x + p)])
        # the HR crop shows the same scene as the LR crop: its 4x downsample matches
        err = np.abs(downsample(hr).astype(int) - lr[2]).mean()
        assert err < 6
        torch.testing.assert_close(s.crop, torch.tensor([x / 120, y / 72, (x + p) / 120, (y + p) / 72]))
        shift = torch.tensor([4 * x, 4 * y, 4 * x, 4 * y])
        for box, full in ((s.face_box, w.face_box), (s.mouth_box, w.mouth_box)):
            np.testing.assert_array_equal(box, (full - shift).clamp(0, 4 * p))


def test_face_focused_crops_cover_the_face(prepared_cache):
    p = 16
    crops = CacheDataset(prepared_cache, actors=None, crfs=[15], patch=p, seed=3, crop_focus="face")
    anywhere = CacheDataset(prepared_cache, actors=None, crfs=[15], patch=p, seed=3)
    inside = []
    for ds in (crops, anywhere):
        face_pixels = [int(((s.face_box[2] - s.face_box[0]) * (s.face_box[3] - s.face_box[1])).clamp(min=0))
                       for s in (ds[i] for i in range(0, len(ds), 3))]
        inside.append(np.mean([a > 0 for a in face_pixels]))
    assert inside[0] == 1.0  # every face-focused crop holds part of the face
    assert inside[1] < 1.0   # crops anywhere in the frame often miss it (the fixture's face is small)
    with pytest.raises(ValueError, match="crop_focus"):
        CacheDataset(prepared_cache, actors=None, patch=p, crop_focus="mouth")


def test_crops_depend_only_on_seed_epoch_and_index(prepared_cache):
    a = CacheDataset(prepared_cache, actors=None, patch=24, seed=7)
    b = CacheDataset(prepared_cache, actors=None, patch=24, seed=7)
    origins = [a.crop_origin(i) for i in range(len(a))]
    assert origins == [b.crop_origin(i) for i in range(len(b))]
    torch.testing.assert_close(a[9].lr, b[9].lr)
    assert len(set(origins)) > len(origins) // 2  # crops vary over items
    b.set_epoch(1)
    assert [b.crop_origin(i) for i in range(len(b))] != origins
    c = CacheDataset(prepared_cache, actors=None, patch=24, seed=8)
    assert [c.crop_origin(i) for i in range(len(c))] != origins
    assert CacheDataset(prepared_cache, actors=None).crop_origin(0) is None


def test_collate_and_a_two_worker_dataloader(prepared_cache):
    ds = CacheDataset(prepared_cache, actors=None, patch=16, seed=1)
    ds.set_epoch(2)
    serial = [collate([ds[i] for i in range(j, min(j + 4, len(ds)))]) for j in range(0, 12, 4)]
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate)
    batches = [b for _, b in zip(range(3), loader)]
    for got, want in zip(batches, serial, strict=True):
        assert isinstance(got, Batch) and len(got) == 4
        assert got.lr.shape == (4, 5, 3, 16, 16) and got.hr.shape == (4, 3, 64, 64)
        assert got.mfcc.shape == (4, 5, 4, 20) and got.au.shape == (4, 17)
        assert got.emotion.dtype == got.crf.dtype == torch.int64 and got.au_mask.dtype == torch.bool
        assert got.face_box.shape == (4, 4) and got.crop.shape == (4, 4) and got.key == want.key
        torch.testing.assert_close(got.lr, want.lr)
        torch.testing.assert_close(got.hr, want.hr)
    moved = batches[0].to("cpu")
    assert moved.key == batches[0].key and moved.lr.device.type == "cpu"
