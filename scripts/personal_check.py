"""Measure `mmsd personalize` against its targets (issue 14): tune on a person's footage, score
on other footage of the same person that the tuning never saw, against the general model and
Bicubic (face PSNR per CRF, `mmsd eval`).

    python scripts/personal_check.py actor 20 [--from mmsd]          # synthetic test actor 20
    python scripts/personal_check.py portrait grace_hopper [--from mmsd]
    python scripts/personal_check.py face woman_dark [--lr 2e-4 --tag lr2e-4]   # choosing settings
    python scripts/personal_check.py summary                        # results/personal/ from every check run

* ``actor N``: the footage is the actor's statement-01 videos of the corpus (`data/synth`),
  the score the statement-02 clips of the cache (`data/cache`, a few frames each); `--synth`
  and `--cache` take a corpus of another seed, whose actors no model saw (choosing settings).
* ``portrait NAME``: the footage is 10 s of the portrait filmed along camera path 1 at the
  head framing (`mmsd content portraits` renders the first 2 s of that same path), written as
  a high-quality video; the score is its path-2 head clip, which the tuning never saw. The
  general models never saw either (they are the real-face validation set); tuning on a
  person is what this feature is for.
* ``face NAME``: the same for a real face of `mmsd.stills.FACES` (training content of `mmsd
  content faces`, never seen by the shipped models, which train on recipe 2's mixture): 10 s
  along that face's camera path 1, scored on its path-3 clip of `data/faces`. These, not the
  portraits or the test actors, are where `personalize`'s settings are chosen.

`--iterations`, `--lr`, `--patch`, `--tune-only` and `--crop` are passed to `mmsd personalize` (default: its own) and
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
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MMSD = [str(Path(sys.executable).parent / "mmsd")]  # the console script of this venv
FOOTAGE_SECONDS = 10
# what `mmsd personalize` did before 2026-12-02 (its checks from then have no "used" record; their crop
# was the head crop, magnified up to 480x288 when smaller, which `--crop head-zoom` is now)
OLD_DEFAULTS = {"lr": 1e-4, "iterations": 600, "crop": "head-zoom"}


def portrait_footage(name: str, out: Path) -> Path:
    """10 s of the portrait along camera path 1 (head framing), x264 CRF 12: the 'earlier call'."""
    from mmsd import content
    from mmsd.stills import PORTRAITS

    return _write_footage(content.portrait_clip([p.name for p in PORTRAITS].index(name), "head", 1,
                                                int(FOOTAGE_SECONDS * content.FPS), seed=0), out)


def _write_footage(clip, out: Path) -> Path:
    """out/footage.mp4: the HR frames of a `mmsd.content` clip at x264 CRF 12 (kept when it exists)."""
    from mmsd import content
    from mmsd.codec import VideoWriter

    video = out / "footage.mp4"
    if not video.is_file():
        with VideoWriter(video, width=clip.hr.shape[2], height=clip.hr.shape[1], fps=content.FPS, crf=12) as writer:
            for frame in clip.hr:
                writer.write(frame)
    return video


def face_footage(name: str, out: Path) -> Path:
    """10 s of real face `name` of FACES along its camera path 1, x264 CRF 12."""
    from mmsd import content
    from mmsd.stills import FACES

    return _write_footage(content.face_clip([p.name for p in FACES].index(name), 1,
                                            int(FOOTAGE_SECONDS * content.FPS), seed=0), out)


def score_clips(kind: str, name: str, cache: Path) -> tuple[Path, str, list[str]]:
    """(cache, actor number as `mmsd eval --actors` wants it, keys of the clips to score)."""
    from mmsd.data import read_index

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


def personalize_flags(settings: dict) -> list[str]:
    """`mmsd personalize` options from {option: value or list of values} (underscores as dashes)."""
    flags = []
    for key, value in settings.items():
        flags += [f"--{key.replace('_', '-')}", *map(format, value if isinstance(value, list) else [value])]
    return flags


def used_settings(model: Path) -> dict:
    """The settings a personal model was tuned with, from its metadata (`mmsd personalize` writes them)."""
    from mmsd.weights import read_model

    info = read_model(model)[3]["personalized"]
    used = {"lr": info["lr"], "iterations": info["iterations"], "crop": info["crop"]}
    train = info.get("train_config", {})
    if train.get("patch", 32) != 32:
        used["patch"] = train["patch"]
    if train.get("tune_only"):
        used["tune_only"] = " ".join(train["tune_only"])
    return used


def weights_id(name: str) -> str:
    """The first 12 hex digits of the SHA-256 of the weights file `name` resolves to (a shipped model changes
    when it is retrained; the checks say which one they started from)."""
    from mmsd.weights import find_model

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
            "face's path-3 clip of `data/faces` after 10 s along its path 1 (where the settings are chosen). "
            "Minutes: wall time of `mmsd personalize` as it ran (on a shared or an idle CPU: README, \"A personal "
            "model\").",
            "",
            "| check | general model (weights SHA-256) | settings | footage | Bicubic | general | personal "
            "| gain over general | gain over Bicubic | minutes |",
            "|---|---|---|---|---|---|---|---|---|---|", *rows, ""]
    (out / "personal.md").write_text("\n".join(text))
    print("\n".join(text))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["actor", "portrait", "face", "summary"])
    parser.add_argument("name", nargs="?", help="test actor number, portrait name (astronaut, grace_hopper) or face "
                                                "name (man_jacket, man_smiling, man_glasses, woman_fair, woman_dark)")
    parser.add_argument("--from", dest="base", default="mmsd", help="model to personalise (default mmsd)")
    parser.add_argument("--iterations", type=int, help="personalize's --iterations (default: its own)")
    parser.add_argument("--lr", type=float, help="personalize's --lr (default: its own)")
    parser.add_argument("--patch", type=int, help="personalize's --patch (default: its own)")
    parser.add_argument("--tune-only", nargs="+", metavar="PART", help="personalize's --tune-only (default: all)")
    parser.add_argument("--crop", help="personalize's --crop (default: its own)")
    parser.add_argument("--tag", default="", help="suffix of the run folder, for settings other than the defaults")
    parser.add_argument("--frames-per-clip", type=int, default=4, help="scored frames per clip of an actor")
    parser.add_argument("--synth", type=Path, default=ROOT / "data" / "synth",
                        help="corpus of an actor's footage (default data/synth; e.g. one of another seed, whose "
                             "actors no model saw, for choosing settings)")
    parser.add_argument("--cache", type=Path, default=ROOT / "data" / "cache",
                        help="`mmsd prepare` cache of that corpus, for the scores (default data/cache)")
    args = parser.parse_args()
    if args.kind == "summary":
        summary(ROOT / "results" / "personal")
        return 0
    if args.name is None:
        parser.error(f"{args.kind} needs a NAME")

    out = ROOT / "runs" / "personal" / "-".join(filter(None, [args.kind, args.name, args.tag]))
    out.mkdir(parents=True, exist_ok=True)
    if args.kind == "portrait":
        videos = [portrait_footage(args.name, out)]
    elif args.kind == "face":
        videos = [face_footage(args.name, out)]
    else:
        number = int(args.name)
        videos = sorted((args.synth / f"Actor_{number:02d}").glob(f"01-01-*-*-01-*-{number:02d}.mp4"))
    model = out / "personal.safetensors"
    base_id = weights_id(args.base)
    if model.is_file() and (out / "check.json").is_file():
        earlier = json.loads((out / "check.json").read_text()).get("from_sha256")
        if earlier != base_id:
            raise SystemExit(f"{out}: tuned from other weights of {args.base} ({earlier}); move it away to re-run")
    settings = {key: value for key in ("iterations", "lr", "patch", "tune_only", "crop")
                if (value := getattr(args, key))}
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

    cache, actor, keys = score_clips(args.kind, args.name, args.cache)
    frames = ["--frames-per-clip", str(args.frames_per_clip)] if args.kind == "actor" else ["--frame-step", "1"]
    subprocess.run([*MMSD, "eval", "--data", str(cache), "--actors", actor, "--clips", *keys,
                    "--models", "bicubic", args.base, f"personal={model}", *frames,
                    "--table1", "bicubic", args.base, "personal", "--no-figures", "--no-progress",
                    "--out", str(out / "eval")], check=True, cwd=ROOT)
    table = json.loads((out / "eval" / "table1.json").read_text())
    psnr = {row["name"]: {c.split()[1]: v for c, v in row["values"].items() if c.endswith("PSNR")}
            for row in table["rows"]}
    check["face_psnr"] = psnr
    check["gain_over_general"] = {crf: psnr["personal"][crf] - psnr[args.base][crf] for crf in psnr["personal"]}
    check["gain_over_bicubic"] = {crf: psnr["personal"][crf] - psnr["bicubic"][crf] for crf in psnr["personal"]}
    (out / "check.json").write_text(json.dumps(check, indent=1) + "\n")
    print(json.dumps(check, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
