"""MMSD-Net: shapes per switch, gradient flow, initial output, losses, discriminator, configs."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch
import torch.nn.functional as F

from mmsd.models import (
    Discriminator, GeneratorLoss, MMSDConfig, MMSDNet, MMSDOutput, RestorationOutput, au_loss, build_model,
    complexity, discriminator_loss, generator_adversarial_loss, load_config, param_groups, parse_overrides,
)
from mmsd.models.audio import fit_maps
from mmsd.models.blocks import Upsampler

TINY = MMSDConfig(channels=8, radius=1, extract_blocks=1, deform_groups=2, trunk_blocks=1, audio_hidden=8,
                  audio_layers=3, audio_map_channels=4, attention_channels=4, au_hidden=8, emotion_hidden=8,
                  recon_blocks=1, upsample_channels=8, disc_channels=8)


def _inputs(cfg: MMSDConfig, b: int = 2, h: int = 13, w: int = 11, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    lr = torch.rand(b, cfg.num_frames, 3, h, w, generator=g)
    mfcc = torch.randn(b, cfg.num_frames, cfg.mfcc_per_frame, cfg.n_mfcc, generator=g) * 10
    emotion = torch.randint(0, 15, (b,), generator=g)
    return lr, mfcc, emotion


def _unzero(model: torch.nn.Module) -> None:
    """Perturb every weight matrix, so the zero- and identity-initialised layers (offsets, fusions,
    last conv) stop blocking the gradient, as after a first optimiser step."""
    g = torch.Generator().manual_seed(1)
    for p in model.parameters():
        if p.dim() > 1:
            p.data.add_(torch.randn(p.shape, generator=g) * 0.05)


@pytest.mark.parametrize("audio,emotion", list(itertools.product([False, True], [False, True])))
@pytest.mark.parametrize("h,w", [(13, 11), (72, 120)])
def test_shapes_for_every_switch_and_size(audio, emotion, h, w):
    cfg = dataclasses.replace(TINY, audio=audio, emotion=emotion)
    model = MMSDNet(cfg).eval()
    lr, mfcc, em = _inputs(cfg, h=h, w=w)
    with torch.no_grad():
        out = model(lr, mfcc if audio else None, em if emotion else None)
    assert isinstance(out, MMSDOutput)
    assert out.image.shape == (2, 3, 4 * h, 4 * w)
    assert (out.au is not None) == emotion and (out.au is None or out.au.shape == (2, 17))
    assert (out.audio_attention is not None) == audio
    if audio:
        assert out.audio_attention.shape == (2, 1, h, w)
    assert out.offset_abs_mean.dim() == 0 and out.offset_abs_mean >= 0
    # a switched-off branch is absent, not fed zeros
    assert hasattr(model, "audio") == audio and hasattr(model, "au_generator") == emotion


@pytest.mark.parametrize("audio,emotion", [(True, True), (True, False), (False, True)])
def test_every_branch_that_is_on_gets_gradient_from_the_image(audio, emotion):
    torch.manual_seed(0)  # a random draw can leave a ReLU dead on these few pixels: fixed, not flaky
    cfg = dataclasses.replace(TINY, audio=audio, emotion=emotion, au_dropout=0.0)
    model = MMSDNet(cfg)
    _unzero(model)
    lr, mfcc, em = _inputs(cfg, h=9, w=10)
    model(lr, mfcc, em).image.abs().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []


@pytest.mark.parametrize("audio,emotion", [(True, True), (True, False), (False, True)])
def test_untrained_branches_leave_the_image_only_output_unchanged(audio, emotion):
    # the fusions start as the identity on f_V, so every ablation starts from the same function
    cfg = dataclasses.replace(TINY, audio=audio, emotion=emotion)
    full = MMSDNet(cfg).eval()
    _unzero(full.reconstruction)  # a non-trivial output, shared by both models
    image_only = MMSDNet(dataclasses.replace(cfg, audio=False, emotion=False)).eval()
    image_only.load_state_dict(full.state_dict(), strict=False)
    lr, mfcc, em = _inputs(cfg)
    with torch.no_grad():
        torch.testing.assert_close(full(lr, mfcc, em).image, image_only(lr).image)


@pytest.mark.parametrize("causal", [False, True])
def test_untrained_output_is_bicubic_reference_frame(causal):
    cfg = dataclasses.replace(TINY, causal=causal)
    lr, mfcc, em = _inputs(cfg)
    with torch.no_grad():
        out = MMSDNet(cfg).eval()(lr, mfcc, em)
    ref = lr[:, -1] if causal else lr[:, cfg.radius]
    torch.testing.assert_close(out.image, F.interpolate(ref, scale_factor=4, mode="bicubic", align_corners=False))
    assert out.offset_abs_mean == 0  # zero-initialised offsets


def test_single_frame_window_has_no_alignment():
    cfg = dataclasses.replace(TINY, radius=0)
    out = MMSDNet(cfg)(*_inputs(cfg))
    assert out.image.shape == (2, 3, 52, 44) and out.offset_abs_mean is None


def test_bad_inputs_say_what_is_wrong():
    model = MMSDNet(TINY)
    lr, mfcc, em = _inputs(TINY)
    with pytest.raises(ValueError, match=r"expected lr \(B, 3, 3, H, W\)"):
        model(lr[:, :2], mfcc, em)
    with pytest.raises(ValueError, match="audio branch is on: expected mfcc"):
        model(lr, None, em)
    with pytest.raises(ValueError, match="audio branch is on: expected mfcc"):
        model(lr, mfcc[..., :5], em)
    with pytest.raises(ValueError, match="emotion branch is on"):
        model(lr, mfcc, None)
    with pytest.raises(ValueError, match="emotion ids must be integers in 0..14"):
        model(lr, mfcc, torch.tensor([0, 15]))


def test_audio_maps_follow_the_crop_box():
    maps = torch.randn(2, 3, 72, 120, dtype=torch.float64)
    torch.testing.assert_close(fit_maps(maps, (13, 11), torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 2)),
                               fit_maps(maps, (13, 11)))
    box = torch.tensor([[0.25, 0.25, 0.75, 0.75], [0.0, 0.5, 0.5, 1.0]])
    crops = fit_maps(maps, (36, 60), box)
    torch.testing.assert_close(crops[0], maps[0, :, 18:54, 30:90])
    torch.testing.assert_close(crops[1], maps[1, :, 36:72, 0:60])


def test_au_loss_ignores_masked_targets():
    pred = torch.randn(4, 17, requires_grad=True)
    target = torch.rand(4, 17) * 5
    mask = torch.tensor([True, False, True, False])
    loss = au_loss(pred, target, mask)
    (grad,) = torch.autograd.grad(loss, pred)
    other = target.clone()
    other[~mask] = float("nan")  # whatever sits in a masked row must not matter
    loss2 = au_loss(pred, other, mask)
    (grad2,) = torch.autograd.grad(loss2, pred)
    torch.testing.assert_close(loss, loss2)
    torch.testing.assert_close(grad, grad2)
    assert torch.all(grad[~mask] == 0) and torch.all(grad[mask] != 0)
    expected = (pred[mask] - target[mask]).pow(2).sum(dim=1).mean()  # eq. 4 averaged over the batch
    torch.testing.assert_close(loss, expected)
    none = au_loss(pred, target, torch.zeros(4, dtype=torch.bool))
    assert none == 0 and none.requires_grad


def test_generator_loss_combines_terms_with_paper_weights():
    image, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    out = MMSDOutput(image=image, au=torch.randn(2, 17), offset_abs_mean=None)
    au, mask, logits = torch.rand(2, 17), torch.tensor([True, True]), torch.randn(2)
    terms = GeneratorLoss()(out, hr, au, mask, fake_logits=logits)
    l1 = (image - hr).abs().mean()
    adv = -torch.log(torch.sigmoid(logits)).mean()
    torch.testing.assert_close(terms.total, l1 + 0.01 * adv + 0.001 * au_loss(out.au, au, mask))
    warmup = GeneratorLoss()(out, hr, au, mask)  # no adversarial term in the first epochs
    assert warmup.adv is None
    real, fake = torch.randn(3), torch.randn(3)
    torch.testing.assert_close(generator_adversarial_loss(fake), -torch.log(torch.sigmoid(fake)).mean())
    torch.testing.assert_close(discriminator_loss(real, fake),
                               -torch.log(torch.sigmoid(real)).mean() - torch.log(1 - torch.sigmoid(fake)).mean())


def test_discriminator_is_conditioned_on_the_emotion_state():
    disc = Discriminator(channels=8)
    image = torch.rand(3, 3, 40, 52)
    logits = disc(image, torch.tensor([0, 1, 2]))
    assert logits.shape == (3,)
    assert not torch.allclose(logits, disc(image, torch.tensor([5, 6, 7])))
    with pytest.raises(ValueError, match="at least 16x16"):
        disc(torch.rand(1, 3, 8, 40), torch.tensor([0]))


def test_offset_parameters_get_their_own_learning_rate():
    model = MMSDNet(TINY)
    groups = param_groups(model, 1e-4, offset_lr_scale=0.1)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert groups[1]["lr"] == pytest.approx(1e-5)
    assert any(p is model.video.align.dcn.conv_offset.weight for p in groups[1]["params"])


def test_named_configs_load_and_override(tmp_path):
    paper, small = load_config("paper"), load_config("small")
    # paper.yaml spells out the defaults, but for the MFCC normalisation: new models read normalised MFCC,
    # while a weight file written before the key existed must keep reading raw MFCC (the default)
    assert paper == dataclasses.replace(MMSDConfig(), mfcc_norm="cmvn") and MMSDConfig().mfcc_norm == "none"
    assert (paper.channels, paper.trunk_blocks, paper.recon_blocks, paper.audio_layers) == (64, 4, 10, 3)
    assert small.channels < paper.channels and small.num_frames == paper.num_frames == 5
    assert load_config("small", audio=False, radius=1).audio is False
    path = tmp_path / "mine.yaml"
    path.write_text("channels: 16\ndeform_groups: 4\n")
    assert load_config(path).channels == 16
    path.write_text("channels: 16\nchanels: 3\n")
    with pytest.raises(ValueError, match="unknown config key.*chanels"):
        load_config(path)
    with pytest.raises(ValueError, match="unknown config key.*colour"):
        load_config("small", colour=3)
    with pytest.raises(ValueError, match="audio must be true or false"):
        load_config("small", audio="yes")
    with pytest.raises(ValueError, match="not divisible by deform_groups"):
        load_config("small", channels=30, deform_groups=4)
    with pytest.raises(ValueError, match="neither paper nor small"):
        load_config("huge")
    assert parse_overrides(["channels=16", "audio=false"]) == {"channels": 16, "audio": False}


@pytest.mark.parametrize("model", ["edvr", "dbpn"])
def test_baseline_small_configs_match_mmsd_small_in_size(model):
    # issue 5: baselines trained under the same budget have about MMSD small's parameter count
    mmsd_params = complexity(build_model("mmsd", dataclasses.asdict(load_config("small")))).params
    small = load_config("small", model=model)
    paper = load_config("paper", model=model)
    assert paper == type(small)()  # the paper files spell out the published defaults
    params = complexity(build_model(model, dataclasses.asdict(small))).params
    assert 0.85 < params / mmsd_params < 1.15
    assert load_config("small", model=model, radius=1).radius == 1
    with pytest.raises(ValueError, match="unknown config key.*trunk_blocks"):
        load_config("small", model=model, trunk_blocks=2)
    with pytest.raises(ValueError, match="unknown model"):
        load_config("small", model="vdsr")
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["channels"])


def test_complexity_counts_params_and_macs():
    model = MMSDNet(TINY)
    full, small = complexity(model), complexity(model, (36, 60))
    assert full.params == sum(p.numel() for p in model.parameters())
    assert 3.0 < full.macs_per_frame / small.macs_per_frame < 4.0  # conv work scales with area
    no_audio = complexity(MMSDNet(dataclasses.replace(TINY, audio=False)))
    assert no_audio.macs_per_frame < full.macs_per_frame
    # a transposed conv (DBPN's up-projection) counts input x C_out x kh x kw on top of the convs
    dbpn = build_model("dbpn", {"features": 8, "channels": 4, "stages": 2}).eval()
    conv_macs = []
    hooks = [m.register_forward_hook(lambda m, i, o: conv_macs.append(o.numel() * m.weight[0].numel()))
             for m in dbpn.modules() if type(m) is torch.nn.Conv2d]
    with torch.no_grad():
        dbpn(torch.zeros(1, 5, 3, 8, 8))
    for h in hooks:
        h.remove()
    deconvs = [m for m in dbpn.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    deconv_macs = sum(8 * 8 * m.in_channels * m.out_channels * 64 for m in deconvs)  # all read 8x8 LR maps
    assert deconvs and complexity(dbpn, (8, 8)).macs_per_frame == sum(conv_macs) + deconv_macs


def test_build_model_from_a_config_dict():
    model = build_model("mmsd", dataclasses.asdict(dataclasses.replace(TINY, audio=False)))
    assert isinstance(model, MMSDNet) and not model.cfg.audio
    out = model(*_inputs(model.cfg))
    assert isinstance(out, RestorationOutput) and isinstance(out, MMSDOutput)
    with pytest.raises(ValueError, match="unknown model 'vdsr'"):
        build_model("vdsr", {})
    with pytest.raises(ValueError, match="unknown mmsd config key.*width"):
        build_model("mmsd", {"width": 3})


def test_upsampler_scales_to_rgb():
    x = torch.randn(2, 8, 5, 7)
    assert Upsampler(8, 4)(x).shape == (2, 3, 20, 28)
    assert Upsampler(8, 2, mid_channels=4)(x).shape == (2, 3, 10, 14)
    assert torch.all(Upsampler(8, 4, zero_last=True)(x) == 0)
    with pytest.raises(ValueError, match="scale 2, 4 or 8"):
        Upsampler(8, 3)


def test_precomputed_frame_features_give_the_plain_forward():
    """The streaming fast path: per-frame features computed once and passed in change nothing."""
    model = MMSDNet(dataclasses.replace(TINY, radius=2)).eval()
    _unzero(model)
    lr, mfcc, em = _inputs(model.cfg, b=3)
    b, t, _, h, w = lr.shape
    with torch.no_grad():
        plain = model(lr, mfcc, em)
        features = model.frame_features(lr.reshape(b * t, 3, h, w)).view(b, t, -1, h, w)  # (B, T, C, H, W)
        fast = model(lr, mfcc, em, frame_features=features)
    torch.testing.assert_close(fast.image, plain.image, rtol=0, atol=1e-6)
    torch.testing.assert_close(fast.au, plain.au, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="expected frame features"):
        model(lr, mfcc, em, frame_features=features[:, 1:])


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_skip_is_torchs_bicubic(scale):
    """The conv form of the skip every network adds equals torch's bicubic interpolate, borders included,
    in fp32 even under bf16 autocast (rounded to bf16 the picture would lose 1/256)."""
    from mmsd.models import precision
    from mmsd.models.blocks import upsample_bicubic

    x = torch.rand(2, 3, 9, 14, generator=torch.Generator().manual_seed(0))
    expected = torch.nn.functional.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)
    assert torch.allclose(upsample_bicubic(x, scale), expected, atol=2e-5)
    with precision.autocast("bf16"):
        mixed = upsample_bicubic(x, scale)
    assert mixed.dtype == torch.float32 and torch.allclose(mixed, expected, atol=2e-5)


def test_the_bicubic_skip_serves_autograd_after_an_inference_mode_decode():
    """Its weights are cached: made first under inference_mode (a decode), they must still work in training."""
    from mmsd.models.blocks import _bicubic_weights, upsample_bicubic

    _bicubic_weights.cache_clear()
    with torch.inference_mode():
        upsample_bicubic(torch.rand(1, 3, 4, 5), 4)
    x = torch.rand(1, 3, 4, 5, requires_grad=True)
    upsample_bicubic(x, 4).sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


def test_the_bicubic_skip_computes_after_a_trace_with_fake_tensors():
    """`torch.onnx.export` traces with fake tensors: when its trace was the first to use the skip, a cached
    kernel tensor was fake, and every later forward of the process gave symbolic values that no comparison
    could read (tests/test_export.py failed when run alone)."""
    from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode

    from mmsd.models.blocks import _bicubic_weights, upsample_bicubic

    _bicubic_weights.cache_clear()
    with FakeTensorMode():
        upsample_bicubic(torch.rand(1, 3, 4, 5), 4)
    out = upsample_bicubic(torch.ones(1, 3, 4, 5), 4)
    assert not isinstance(out, FakeTensor)
    assert torch.allclose(out, torch.ones(1, 3, 16, 20), atol=1e-6)
