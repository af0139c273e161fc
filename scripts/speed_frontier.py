"""Speed against quality: every decoder configuration that has both a measured speed and a
measured face PSNR (issue 12, part 3), and which of them no other configuration beats on both.

    python scripts/speed_frontier.py                    # the defaults below -> results/speed/speed_frontier.*

Speeds come from `mmsd bench` JSON files of one machine (a later file overrides an earlier one
for the same model, engine, precision and thread count), qualities from `mmsd eval` Table 1 JSON
files (rows named by model). A shipped model's speed does not depend on its weights' values, only
on its architecture and config, so a bench of an older training of the same model still holds.
A bf16 configuration is given the quality of the fp32 tables: bf16 inference moves the face PSNR
by hundredths of a dB (`mmsd eval --precision bf16`, docs/speed.md), far less than the gaps
between models. Nothing is typed in by hand: the table is a join of those files.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# the Xeon with AMX of 2026-12-01 (fp32 and bf16); the AMD EPYC benches of 2026-11-24 are fp32 only
# and the Xeon of 2026-12-03 with frames restored on worker threads (`Restorer(workers=)`, bf16)
BENCHES = ["results/speed/bench-xeon-2threads.json", "results/speed/bench-xeon-train.json",
           "results/speed/bench-xeon-workers.json"]
# the per-frame scores hold every model `make results` / `make realfaces` evaluated, the tables only their rows
TABLES = {"synthetic test actors": "results/table1.json,results/ablation.json,results/per_frame.csv",
          "real faces": "results/realfaces/table1.json,results/realfaces/ablation.json,results/realfaces/per_frame.csv"}
REAL_TIME = 30.0  # fps of the target (issue 12)


@dataclass
class Config:
    model: str  # the Table 1 row name, e.g. 'mmsd'
    engine: str
    precision: str
    threads: int
    workers: int = 1  # frames restored at once (benches before `Restorer(workers=)` ran one)
    stream_fps: float | None = None  # the network alone, streaming, batch 1
    e2e_fps: float | None = None  # `Restorer.restore_file` of a clip, decode + network + encode

    @property
    def key(self) -> tuple[str, str, str, int, int]:
        return self.model, self.engine, self.precision, self.threads, self.workers

    @property
    def fps(self) -> float:
        """The speed the frontier is drawn on: the network's streaming speed, measured for every
        configuration (end to end, decoding and x264 add about 35 ms per frame: see docs/speed.md)."""
        return self.stream_fps


def _model_name(label: str) -> str:
    return label.removesuffix(" (shipped)")


def read_benches(paths: list[Path]) -> dict[tuple[str, str, str, int, int], Config]:
    configs: dict[tuple[str, str, str, int, int], Config] = {}

    def get(label: str, engine: str, precision: str, threads: int, workers: int) -> Config:
        key = (_model_name(label), engine, precision, threads, workers)
        return configs.setdefault(key, Config(*key))

    for path in paths:
        bench = json.loads(path.read_text())
        threads = int(bench["meta"]["threads"])
        for row in bench["models"]:
            if row["weights"] == "random" and row["arch"] != "bicubic":
                continue  # an untrained config has a speed but no quality
            precision = row.get("precision", "fp32")  # benches before issue 12 timed fp32 only
            get(row["label"], "torch", precision, threads, row.get("workers", 1)).stream_fps = row["stream_fps"]
            if "onnx_stream_fps" in row:
                get(row["label"], "onnx", "fp32", threads, 1).stream_fps = row["onnx_stream_fps"]
        for row in bench["end_to_end"]:
            if row["overlap"]:  # the decoder's default
                config = get(row["label"], row["engine"], row.get("precision", "fp32"), threads, row.get("workers", 1))
                config.e2e_fps = row["fps"]
    return configs


def read_psnr(paths: str) -> dict[str, dict[int, float]]:
    """model -> CRF -> face PSNR of `mmsd eval` outputs (Table 1 or ablation JSON, or per_frame.csv whose means
    they are; comma-separated paths)."""
    out: dict[str, dict[int, float]] = {}
    for path in paths.split(","):
        if path.endswith(".csv"):
            from mmsd.evaluation.tables import group_means, read_rows

            for (model, crf), means in group_means(read_rows(ROOT / path), ("model", "crf")).items():
                out.setdefault(model, {})[int(crf)] = means["face_psnr"]
            continue
        table = json.loads((ROOT / path).read_text())
        columns = {int(c.split()[1]): c for c in table["columns"] if c.endswith("PSNR") and "mouth" not in c}
        for row in table["rows"]:
            out[row["name"]] = {crf: row["values"][c] for crf, c in columns.items()}
    return out


def on_frontier(configs: list[Config], psnr: dict[str, dict[int, float]], crf: int) -> set[tuple]:
    """Keys of the scored configurations that no other one matches or beats in both fps and PSNR
    at `crf` while beating it in one."""
    points = {c.key: (c.fps, psnr[c.model][crf]) for c in configs if c.model in psnr}
    return {key for key, (f, p) in points.items()
            if not any(f2 >= f and p2 >= p and (f2, p2) != (f, p) for f2, p2 in points.values())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", type=Path, nargs="+", default=[ROOT / p for p in BENCHES])
    parser.add_argument("--table", nargs="+", metavar="NAME=PATH",
                        default=[f"{name}={paths}" for name, paths in TABLES.items()])
    parser.add_argument("--crf", type=int, default=32, help="CRF whose PSNR decides the frontier (default 32)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "speed" / "speed_frontier")
    args = parser.parse_args()

    configs = [c for c in sorted(read_benches(args.bench).values(), key=lambda c: -c.fps) if c.stream_fps]
    tables = {name: read_psnr(paths) for name, paths in (t.split("=", 1) for t in args.table)}
    rows, lines = [], []
    crfs = sorted(next(iter(next(iter(tables.values())).values())))
    header = ["model", "engine", "precision", "threads", "workers", "stream fps", "end-to-end fps"]
    for name in tables:
        header += [f"{name}: CRF {c}" for c in crfs] + [f"{name}: on the frontier (CRF {args.crf})"]
    fronts = {name: on_frontier(configs, psnr, args.crf) for name, psnr in tables.items()}
    for c in configs:
        if not any(c.model in psnr for psnr in tables.values()):
            continue
        row = {"model": c.model, "engine": c.engine, "precision": c.precision, "threads": c.threads,
               "workers": c.workers, "stream_fps": c.stream_fps, "e2e_fps": c.e2e_fps, "psnr": {}}
        cells = [f"`{c.model}`", c.engine, c.precision, str(c.threads), str(c.workers), _fmt(c.stream_fps),
                 _fmt(c.e2e_fps)]
        for name, psnr in tables.items():
            values = psnr.get(c.model)
            row["psnr"][name] = values
            cells += [f"{values[crf]:.2f}" if values else "-" for crf in crfs]
            cells.append("yes" if c.key in fronts[name] else "")
        rows.append(row)
        lines.append("| " + " | ".join(cells) + " |")

    best = max((c for c in configs if c.model != "bicubic"), key=lambda c: c.fps)
    real_time = sorted({f"`{c.model}`" for c in configs if c.model != "bicubic" and (c.e2e_fps or 0) >= REAL_TIME})
    cpus = sorted({json.loads(p.read_text())["meta"].get("cpu", "?") for p in args.bench})
    text = [
        f"**Speed against face PSNR** (`python scripts/speed_frontier.py`): every configuration with a measured "
        f"speed and a measured quality. Speed ({', '.join(cpus)}, 2 cores): "
        f"{', '.join(f'`{p.relative_to(ROOT)}`' for p in args.bench)} "
        "(120x72 -> 480x288, batch 1; end to end = decode + network + x264 encode of a 68-frame clip with sound, "
        "where measured). Quality: face PSNR (dB) of Table 1 of "
        + ", ".join(f"{name} (`{paths}`)" for name, paths in (t.split('=', 1) for t in args.table))
        + f"; bf16 rows carry the fp32 quality. *Frontier*: no other configuration's network is both at "
        f"least as fast (streaming fps) and at least as good at CRF {args.crf}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *lines,
        "",
        f"Fastest network: `{best.model}` ({best.engine}, {best.precision}, {best.threads} threads, {best.workers} "
        f"worker{'s' if best.workers > 1 else ''}) at {best.fps:.1f} fps streaming, {best.fps / REAL_TIME:.2f}x of "
        f"real time ({REAL_TIME:.0f} fps) before decoding and encoding. Real time end to end: "
        + (", ".join(real_time) + " and Bicubic." if real_time else "only Bicubic."),
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text("\n".join(text))
    args.out.with_suffix(".json").write_text(json.dumps({"crf": args.crf, "rows": rows}, indent=1) + "\n")
    _plot(configs, tables, fronts, args.crf, args.out.with_suffix(".png"))
    print("\n".join(text))
    return 0


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _plot(configs: list[Config], tables: dict, fronts: dict, crf: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tables), figsize=(5.5 * len(tables), 4.4), squeeze=False)
    fastest = {}  # one label per model, at its fastest configuration
    for c in configs:
        if c.fps > fastest.get(c.model, (0.0, None))[0]:
            fastest[c.model] = (c.fps, c.key)
    for ax, (name, psnr) in zip(axes[0], tables.items()):
        for c in configs:
            if c.model not in psnr:
                continue
            x, y = c.fps, psnr[c.model][crf]
            marker = {("torch", "fp32"): "o", ("torch", "bf16"): "^"}.get((c.engine, c.precision), "s")
            ax.scatter(x, y, marker=marker, s=36 if c.threads == 2 else 12,
                       color="C3" if c.key in fronts[name] else "C0", alpha=0.8)
            if fastest[c.model][1] == c.key:
                ax.annotate(c.model, (x, y), fontsize=7, xytext=(4, -3), textcoords="offset points")
        ax.axvline(REAL_TIME, color="grey", linestyle="--", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("fps (network, streaming)")
        ax.set_ylabel(f"face PSNR at CRF {crf} (dB)")
        ax.set_title(name)
    fig.suptitle("Speed against quality on the 2-core CPU. Red: on the frontier; circle: PyTorch fp32, triangle: "
                 "PyTorch bf16, square: ONNX Runtime;\nlarge: 2 threads, small: 1; dashed: 30 fps; each model labelled "
                 "at its fastest configuration", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
