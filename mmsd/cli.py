"""The `mmsd` command line: a thin layer over the package.

Each subcommand lives in its own module, which defines `add_arguments(parser)` and
`run(args) -> int`; the module is imported only when its command runs, so
`mmsd --help` stays fast and a broken optional part cannot break the others.
Errors the user can act on print as one line (`mmsd: error: ...`); set
MMSD_DEBUG=1 to see the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings

from mmsd.errors import MmsdError, MmsdWarning

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("mmsd.commands.synth", "write the synthetic RAVDESS-like talking-head corpus"),
    "prepare": ("mmsd.commands.prepare", "turn a RAVDESS-layout corpus into a training cache"),
    "content": ("mmsd.data.content", "caches of real-image content: the real-face validation set, natural photos, "
                                     "dead leaves"),
    "encode": ("mmsd.commands.encode",
               "sender: downsample, x264 at a CRF, carry the audio, write emotion side information"),
    "decode": ("mmsd.commands.decode", "receiver: restore a low bit-rate video with a soft decoder (audio copied)"),
    "voices": ("mmsd.commands.voices",
               "voice variants of a cache's audio (pitch, room, noise, AAC) for `train --voice-augment`"),
    "train": ("mmsd.commands.train", "train MMSD-Net (or a baseline) on a prepared cache"),
    "eval": ("mmsd.commands.eval",
             "the paper's evaluation: Table 1, ablation, per-emotion gains, figures, BD-rate"),
    "train-emotion": ("mmsd.commands.train_emotion",
                      "train the sender-side emotion classifier (for encode --emotion auto)"),
    "finetune": ("mmsd.commands.finetune",
                 "adapt a model to one test speaker and score it (person-ID prior, Sec. 4.3)"),
    "personalize": ("mmsd.commands.personalize",
                    "a personal model: fine-tune a model on earlier footage of one speaker (any video)"),
    "demo": ("mmsd.commands.demo", "run the built-in demonstration"),
    "bench": ("mmsd.commands.bench",
              "time the soft decoders here: model and end-to-end frames/s, real-time factor, memory"),
    "models": ("mmsd.commands.catalog", "list the models available by name: kind, size, purpose, validation figures"),
    "export": ("mmsd.commands.export", "write a restoration network as an ONNX graph (for `decode --engine onnx`)"),
    "serve": ("mmsd.web.serve", "the tool in a browser: drop a video, see it restored beside Bicubic (offline)"),
}


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmsd",
        description="Soft decoding of very low bit-rate talking-head video (MMSD-Net).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity, capped by a cgroup (v2) CPU quota.

    torch's default thread count is the physical cores that /proc/cpuinfo describes: a VM whose two
    vCPUs are described as SMT siblings of one core (many clouds) got one thread, and the decoder one
    worker: 22 fps instead of 33 on a 2-vCPU AMD EPYC (docs/speed.md, "Two vCPUs described as one core")."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def _default_threads() -> None:
    """torch's threads for a command that loaded it: OMP_NUM_THREADS (or MKL_NUM_THREADS) if set, else
    `usable_cpus()`. torch caps even OMP_NUM_THREADS at its physical-core count, so this sets the count
    after torch loads rather than through the environment; a command's --threads still wins later.
    Only in a process where the command loaded torch: changing the count of a host process that already
    ran torch (tests calling `main`) made a later fork (`mmsd synth`'s pool) hang in its OpenMP."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    given = os.environ.get("OMP_NUM_THREADS") or os.environ.get("MKL_NUM_THREADS") or ""
    threads = int(given) if given.isdigit() and int(given) > 0 else usable_cpus()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in COMMANDS:
        _top_parser().parse_args(argv)  # prints usage or help and exits
        return 2
    name, rest = argv[0], argv[1:]
    # Before torch loads: idle OpenMP workers sleep instead of spinning. On a CPU shared with other
    # jobs, spinning made 2-thread runs 3-5x slower than 1 thread (docs/speed.md). The user's value wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    module_name, help_text = COMMANDS[name]
    show_warning = warnings.showwarning
    warnings.showwarning = _one_line_warnings(name, show_warning)
    parser = argparse.ArgumentParser(prog=f"mmsd {name}", description=help_text)
    try:
        host_torch = "torch" in sys.modules  # loaded by a program that calls main(): its threads are its own
        module = importlib.import_module(module_name)
        if not host_torch:
            _default_threads()
        module.add_arguments(parser)
        args = parser.parse_args(rest)
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("mmsd: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `mmsd models | head`: the reader left; say nothing, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
    except (MmsdError, ValueError, OSError) as exc:
        if os.environ.get("MMSD_DEBUG"):
            raise
        print(f"mmsd {name}: error: {exc}", file=sys.stderr)
        return 1
    finally:
        warnings.showwarning = show_warning


def _one_line_warnings(name: str, show):
    """A `warnings.showwarning` that prints mmsd's own warnings as `mmsd NAME: warning: ...` and hands
    the others (other libraries') to `show`."""

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, MmsdWarning):
            print(f"mmsd {name}: warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return showwarning


if __name__ == "__main__":
    sys.exit(main())
