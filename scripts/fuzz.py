"""Mutation fuzzing of mmsd's entry points: a damaged file never crashes the tool (issue 40).

    python scripts/fuzz.py -n 1000 --seed 1                   # every entry point, 1,000 damaged files each
    python scripts/fuzz.py -n 50 --entry decode --subprocess  # through the real `mmsd` command
    python scripts/fuzz.py --replay tests/data/fuzz/*.mp4     # the crashes found so far
    python scripts/fuzz.py --seeds MY_CLIPS -n 200 --seed 7   # mutations of your own clips

Each case is a damaged copy of a seed (`fuzz_mutate.mutate`: bit flips, byte runs, truncations, mp4
boxes reordered, cut or resized, absurd header fields, corrupted side information), run through one
entry point of `ENTRY_POINTS` as a user runs it. A run must end within the time limit, print no
traceback, exit 0 or 1 (1 with an error line), and leave either a complete output (it opens and
decodes) or nothing (no output, no temporary file beside it, nothing in its TMPDIR).

Seeds are files named by role in a folder (default tests/data/fuzz/seeds, made by --make-seeds):
`original*` (high-quality footage: encode, personalize, prepare) and `sent*` (what `mmsd encode`
sends: decode). Case i of entry point E under --seed S mutates with random.Random(f"S/E/i"), so
any case can be replayed alone (--case i).

A fresh `mmsd` process spends seconds importing torch; by default mmsd is imported once here and
each run is a forked child calling `mmsd.cli.main(argv)` as the console script does (stdout and
stderr to files, an uncaught exception printed as the interpreter prints it, one torch thread).
Every finding is run again through the real `mmsd` command; --subprocess runs every case that way.
Findings are copied to --crashes (default fuzz-crashes/) as ENTRY-KIND-HASH.EXT with a note of
the command, the mutation and stderr; kept in tests/data/fuzz/, they are replayed by the test suite.

The web page's upload (`mmsd serve`) is the entry point `upload`: the file through the page's
pipeline (`mmsd.web.pipeline.handle_upload`), whose one-line `UploadError` is what the page shows.
Another entry point is an `Entry`: the seed roles it takes, its argv (an `mmsd` command or a
function of `CALLS`), where its input goes, and what a complete output is.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fuzz_mutate import mutate

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "tests" / "data" / "fuzz" / "seeds"
TIMEOUT = 60.0  # s per run; the seeds take well under 2 s
# Held while forking and while printing: a child forked while another thread holds stdout's lock would hang.
_FORK_LOCK = threading.Lock()
SUFFIXES = (".mp4", ".mov", ".mkv", ".m4v")


# --------------------------------------------------------------------------- entry points


@dataclass(frozen=True)
class Entry:
    """One way a damaged file reaches mmsd. `argv(input, out, assets, index)` is the `mmsd` command line
    of case `index`, `out` an empty folder for its outputs (an entry that is no command names a
    function of `CALLS` instead of the command); `verify(out)` returns what is wrong with the outputs
    of a run that exited 0 (an exception in it is a problem too)."""

    name: str
    roles: tuple[str, ...]  # the seeds it takes: "original", "sent"
    argv: Callable[[Path, Path, Path, int], list[str]]
    verify: Callable[[Path], list[str]]
    output: str  # glob in `out` of what a complete output is (prepare: a finished cache entry)
    place: Callable[[Path, str], Path] = lambda case, suffix: case / f"input{suffix}"
    failed_may_leave: tuple[str, ...] = ()  # what a run that exited 1 may leave in `out`


def _verify_video(path: Path, *, side_information: bool = False) -> list[str]:
    from mmsd.media import codec, sideinfo

    if not path.is_file():
        return [f"exit 0 but no {path.name}"]
    info = codec.probe(path)
    frames = sum(1 for _ in codec.read_frames(path))
    problems = [] if frames else [f"{path.name} has no frame"]
    if info.num_frames and frames != info.num_frames:
        problems.append(f"{path.name} decodes {frames} of the {info.num_frames} frames it declares")
    if side_information and sideinfo.from_metadata(info.metadata) is None:
        problems.append(f"{path.name} carries no side information")
    return problems


def _verify_model(path: Path) -> list[str]:
    from mmsd.models import weights

    if not path.is_file():
        return [f"exit 0 but no {path.name}"]
    weights.read_model(path)
    return []


def _verify_cache(out: Path) -> list[str]:
    """Every finished entry reads whole; no temporary entry is left; no skip reason is a Python error."""
    from mmsd.data.dataset import ClipIndex

    cache = out / "cache"
    problems = [f"temporary entry left: {p.name}" for p in cache.glob("Actor_*/.*")]
    index = ClipIndex(cache)
    for clip in index:
        reader = index.reader(clip)
        for crf in index.crfs:
            reader.lr(crf)
        reader.hr(clip.hr_frames[-1])
        reader.mfcc()
    report = json.loads((cache / "report.json").read_text())
    for path, reason in report.get("failed", []):
        if PYTHON_ERROR.search(reason):
            problems.append(f"{PYTHON_TEXT} (skip reason): {reason}")
    return problems


def _cache_verify_failed(out: Path) -> list[str]:
    return [f"exit 1 but an entry was written: {p.parent.name}" for p in (out / "cache").glob("Actor_*/*/meta.json")]


def _decode_argv(src: Path, out: Path, assets: Path, index: int) -> list[str]:
    """Bicubic, and every other case a tiny MMSD-Net, which reads the audio (MFCC) and the emotion too."""
    model = ["bicubic"] if index % 2 == 0 else [str(assets / "tiny.safetensors"), "--precision", "fp32"]
    return ["decode", str(src), "-o", str(out / "restored.mp4"), "--model", *model, "-q"]


def _encode_argv(src: Path, out: Path, assets: Path, index: int) -> list[str]:
    return ["encode", str(src), "-o", str(out / "low.mp4"), "--emotion", "happy-strong", "--preset", "ultrafast", "-q"]


def _personalize_argv(src: Path, out: Path, assets: Path, index: int) -> list[str]:
    """The shortest run the command allows: one iteration of 8x8 crops at one CRF."""
    return ["personalize", str(src), "--from", str(assets / "tiny.safetensors"), "-o", str(out / "me.safetensors"),
            "--iterations", "1", "--patch", "8", "--crf", "40", "--device", "cpu", "--precision", "fp32",
            "--no-progress"]


def _prepare_argv(src: Path, out: Path, assets: Path, index: int) -> list[str]:
    return ["prepare", str(src.parent.parent), "--out", str(out / "cache"), "--crf", "40", "--preset", "ultrafast",
            "--no-progress"]


def _upload_argv(src: Path, out: Path, assets: Path, index: int) -> list[str]:
    return ["upload", str(src), str(out / "job"), "neutral" if index % 2 else "auto"]


def upload(src: str, job: str, emotion: str) -> int:
    """The web page's upload (`mmsd serve`) of `src`, as its job queue runs it: the pipeline's
    `UploadError` is the one line the page shows; any other exception is a bug."""
    from mmsd.web.pipeline import Options, UploadError, handle_upload

    try:
        result = handle_upload(src, job, Options(model="bicubic", emotion=emotion), name="upload.mp4")
    except UploadError as exc:
        print(f"mmsd serve: error: {exc}", file=sys.stderr)
        return 1
    print(f"restored as {result.kind}: {result.frames} frames {result.width}x{result.height}")
    return 0


CALLS = {"upload": upload}  # entry points that are no `mmsd` command: argv[0] names one, argv[1:] its arguments


def _verify_upload(out: Path) -> list[str]:
    """Every video the page made decodes, every still opens."""
    from PIL import Image

    job = out / "job"
    problems = [] if (job / "restored.mp4").is_file() else ["exit 0 but no restored.mp4"]
    for path in sorted(job.iterdir()):
        if path.suffix == ".mp4":
            problems += _verify_video(path)
        elif path.suffix == ".png":
            Image.open(path).load()
    return problems


def _in_corpus(case: Path, suffix: str) -> Path:
    return case / "corpus" / "Actor_01" / f"01-01-01-01-01-01-01{suffix}"


ENTRY_POINTS: dict[str, Entry] = {entry.name: entry for entry in [
    Entry("decode", ("sent",), _decode_argv, lambda out: _verify_video(out / "restored.mp4"), "restored.mp4"),
    Entry("encode", ("original",), _encode_argv, lambda out: _verify_video(out / "low.mp4", side_information=True),
          "low.mp4"),
    Entry("personalize", ("original",), _personalize_argv, lambda out: _verify_model(out / "me.safetensors"),
          "me.safetensors"),
    Entry("prepare", ("original",), _prepare_argv, _verify_cache, "cache/Actor_*/*/meta.json", place=_in_corpus,
          failed_may_leave=("cache",)),
    # the web page's upload: an original (sent first) or a sent file; Bicubic, the emotion read or given
    Entry("upload", ("original", "sent"), _upload_argv, _verify_upload, "job/restored.mp4"),
]}

# An error line or skip reason that is Python's text for a bug, not a sentence about the file.
PYTHON_TEXT = "Python's error text"
PYTHON_ERROR = re.compile(r"object has no attribute|NoneType|index out of range|division by zero|unsupported "
                          r"operand|not subscriptable|referenced before assignment|is not iterable|takes \d+ "
                          r"positional|unhashable|^[A-Z][A-Za-z]*Error$|out of bounds for axis|could not be broadcast")


def _make_assets(folder: Path) -> None:
    """What the entry points need besides their input: a tiny untrained MMSD-Net to personalize and
    to decode with."""
    import dataclasses

    import torch

    from mmsd.models import build_model, load_config
    from mmsd.models.weights import save_model

    config = dataclasses.asdict(load_config(
        "small", channels=8, deform_groups=1, extract_blocks=0, trunk_blocks=1, recon_blocks=1, audio_hidden=8,
        audio_layers=1, attention_channels=4, au_hidden=8, emotion_hidden=8, upsample_channels=8, disc_channels=4))
    torch.manual_seed(0)
    save_model(folder / "tiny.safetensors", name="mmsd", config=config, state=build_model("mmsd", config).state_dict())


# --------------------------------------------------------------------------- running one case


@dataclass
class Case:
    entry: str
    index: int  # -1: a replayed file
    seed_file: str
    steps: list[str]
    data: bytes
    suffix: str


@dataclass
class Result:
    case: Case
    exit_code: int | None  # None: killed at the time limit; negative: died of a signal
    seconds: float
    stderr: str
    problems: list[str] = field(default_factory=list)  # what was left behind
    wrote: bool = False  # left a complete output
    confirmed: str = ""  # a finding run again through the real `mmsd` command: what it did there

    @property
    def findings(self) -> list[str]:
        """Everything wrong with this run: a traceback, a hang, a bad exit, outputs left half-written."""
        found = []
        if self.exit_code is None:
            found.append("hang")
        elif self.exit_code not in (0, 1):
            found.append(f"signal {-self.exit_code}" if self.exit_code < 0 else f"exit {self.exit_code}")
        if "Traceback (most recent call last)" in self.stderr:
            found.append("traceback")
        if self.exit_code == 1 and ": error: " not in self.stderr:
            found.append("exit 1 without an error line")
        if PYTHON_ERROR.search(self.error_line().partition(": error: ")[2]):
            found.append(f"{PYTHON_TEXT}: {self.error_line()}")
        return found + [p if p.startswith(PYTHON_TEXT) else f"half-written: {p}" for p in self.problems]

    def error_line(self) -> str:
        return next((line for line in self.stderr.splitlines() if ": error: " in line), "")


def _console_script(argv: list[str]) -> int:
    """`mmsd ARGV` as the installed console script runs it: sys.exit(main()), and an uncaught
    exception printed as the interpreter prints it, exit status 1. (`CALLS` run the same way.)"""
    from mmsd import cli

    try:
        code = CALLS[argv[0]](*argv[1:]) if argv[0] in CALLS else cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    except BaseException:  # noqa: BLE001 - the interpreter's own handling, which the user sees
        traceback.print_exc()
        return 1
    if code is None or isinstance(code, int):
        return (code or 0) & 0xFF
    print(code, file=sys.stderr)
    return 1


def _fork(work: Callable[[], int], case_dir: Path) -> int:
    """Run `work()` in a child process (its own process group, stdout/stderr to files); its pid."""
    with _FORK_LOCK:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
    if pid:
        return pid
    code = 70
    try:
        os.setpgid(0, 0)
        for fd, name in ((1, "stdout.txt"), (2, "stderr.txt")):
            target = os.open(case_dir / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(target, fd)
            os.close(target)
        os.environ["TMPDIR"] = str(case_dir / "tmp")
        tempfile.tempdir = None  # the parent's cached choice
        import torch

        torch.set_num_threads(1)
        code = work()
        for thread in threading.enumerate():  # the interpreter waits for these before it exits
            if thread is not threading.main_thread() and not thread.daemon:
                thread.join()
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _wait(pid: int, timeout: float) -> int | None:
    """The child's exit code (negative: a signal), or None after killing it at the time limit."""
    fd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
                try:
                    kill()
                except ProcessLookupError:
                    pass
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(status) if ready else None


def _mmsd_command() -> list[str]:
    script = Path(sys.executable).parent / "mmsd"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mmsd.cli"]


def _run_subprocess(argv: list[str], case_dir: Path, timeout: float) -> int | None:
    env = os.environ | {"TMPDIR": str(case_dir / "tmp"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, __file__, "--call", *argv] if argv[0] in CALLS else [*_mmsd_command(), *argv]
    with open(case_dir / "stdout.txt", "ab") as out, open(case_dir / "stderr.txt", "ab") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env, start_new_session=True)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return None


def _verify_in_child(entry: Entry, out: Path, case_dir: Path, timeout: float) -> list[str]:
    report = case_dir / "verify.json"

    def verify() -> int:
        try:
            problems = entry.verify(out)
        except Exception as exc:  # noqa: BLE001 - an output that does not read is the finding
            problems = [f"the output does not read: {type(exc).__name__}: {exc}"]
        report.write_text(json.dumps(problems))
        return 0

    code = _wait(_fork(verify, case_dir), timeout)
    if code != 0 or not report.is_file():
        return [f"reading the output {'hung' if code is None else 'crashed'}"]
    return json.loads(report.read_text())


def run_case(case: Case, work: Path, assets: Path, *, timeout: float = TIMEOUT, use_subprocess: bool = False) -> Result:
    """Run one case in a fresh folder under `work`, check what it left, and remove the folder."""
    entry = ENTRY_POINTS[case.entry]
    case_dir = Path(tempfile.mkdtemp(prefix=f"{case.entry}-{case.index}-", dir=work))
    try:
        out, tmp = case_dir / "out", case_dir / "tmp"
        out.mkdir()
        tmp.mkdir()
        src = entry.place(case_dir, case.suffix)
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_bytes(case.data)
        argv = entry.argv(src, out, assets, case.index)
        start = time.perf_counter()
        if use_subprocess:
            code = _run_subprocess(argv, case_dir, timeout)
        else:
            code = _wait(_fork(lambda: _console_script(argv), case_dir), timeout)
        seconds = time.perf_counter() - start
        stderr = (case_dir / "stderr.txt").read_text(errors="replace")
        result = Result(case, code, seconds, stderr)
        left = sorted(p.name for p in out.iterdir())
        result.wrote = any(out.glob(entry.output))
        if code == 0:
            result.problems = _verify_in_child(entry, out, case_dir, timeout)
            result.problems += [f"file beside the output: {name}" for name in left if name.startswith(".")]
        elif code is not None:
            result.problems = [f"exit {code} but left {name}" for name in left if name not in entry.failed_may_leave]
            if code == 1 and entry.failed_may_leave:
                result.problems += _cache_verify_failed(out)
        if code is not None:  # torch keeps its compiler cache in TMPDIR on purpose
            result.problems += [f"left in TMPDIR: {p.name}" for p in tmp.iterdir()
                                if not p.name.startswith("torchinductor_")]
        return result
    finally:
        shutil.rmtree(case_dir, ignore_errors=True)


# --------------------------------------------------------------------------- campaigns


def read_seeds(folder: Path) -> dict[str, list[Path]]:
    """role -> the seed files of that role in `folder` (by name: original*, sent*)."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES)
    seeds = {role: [p for p in files if p.name.startswith(role)] for role in ("original", "sent")}
    for role, found in seeds.items():
        if not found:
            raise SystemExit(f"fuzz: no {role}* seed file in {folder}")
    return seeds


def make_case(entry: str, index: int, seed: int, seeds: dict[str, list[Path]]) -> Case:
    rng = random.Random(f"{seed}/{entry}/{index}")
    source = rng.choice([path for role in ENTRY_POINTS[entry].roles for path in seeds[role]])
    data, steps = mutate(source.read_bytes(), rng)
    return Case(entry, index, source.name, steps, data, source.suffix)


def replay_case(path: Path) -> Case:
    """A kept crash input, ENTRY-...: run as is through that entry point."""
    entry = path.name.split("-")[0]
    if entry not in ENTRY_POINTS:
        raise SystemExit(f"fuzz: {path.name} does not start with an entry point ({', '.join(ENTRY_POINTS)})")
    return Case(entry, -1, path.name, ["replayed"], path.read_bytes(), path.suffix)


def prepare_assets(work: Path) -> Path:
    assets = work / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    if not (assets / "tiny.safetensors").is_file():
        def build() -> int:
            _make_assets(assets)
            return 0

        if _wait(_fork(build, assets), TIMEOUT) != 0:
            raise SystemExit(f"fuzz: could not make the assets: {(assets / 'stderr.txt').read_text()}")
    return assets


def preload() -> None:
    """Import what the entry points import, once, before the forks (torch is imported, never run:
    its thread pools would not survive a fork)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `mmsd` sets it before torch loads
    import importlib

    from mmsd import cli

    for command in ("decode", "encode", "personalize", "prepare", "train", "eval"):  # what they load lazily too
        importlib.import_module(cli.COMMANDS[command][0])
    import mmsd.training.finetune  # noqa: F401
    import mmsd.training.personalize  # noqa: F401
    import mmsd.web.pipeline  # noqa: F401
    import torch._dynamo  # noqa: F401 - 2 s of every personalize run otherwise (torch.optim imports it)


def run_cases(cases: Sequence[Case], work: Path, *, jobs: int = 1, timeout: float = TIMEOUT,
              use_subprocess: bool = False, confirm: bool = True, log: Callable[[str], None] = print) -> list[Result]:
    """Run the cases, `jobs` at a time (threads, each waiting on its own child); findings are run
    again through the real `mmsd` command unless they ran that way already."""
    preload()
    assets = prepare_assets(work)
    results: list[Result | None] = [None] * len(cases)
    queue = iter(range(len(cases)))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                i = next(queue, None)
            if i is None:
                return
            result = run_case(cases[i], work, assets, timeout=timeout, use_subprocess=use_subprocess)
            if result.findings and confirm and not use_subprocess:
                again = run_case(cases[i], work, assets, timeout=timeout, use_subprocess=True)
                result.confirmed = "; ".join(again.findings) or "not reproduced by `mmsd`"
            results[i] = result
            if result.findings:
                with _FORK_LOCK:
                    log(f"  {cases[i].entry} case {cases[i].index} ({cases[i].seed_file}: "
                        f"{'; '.join(cases[i].steps)}): {'; '.join(result.findings)}")

    threads = [threading.Thread(target=worker) for _ in range(max(1, jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def keep_findings(results: Sequence[Result], folder: Path) -> list[Path]:
    """Copy each finding's input to `folder` as ENTRY-KIND-HASH.EXT, with a note beside it."""
    kept = []
    for result in results:
        if not result.findings:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        kind = re.sub(r"[^a-z0-9]+", "_", result.findings[0].split(":")[0])
        digest = hashlib.sha1(result.case.data).hexdigest()[:10]
        path = folder / f"{result.case.entry}-{kind}-{digest}{result.case.suffix}"
        path.write_bytes(result.case.data)
        note = [f"case {result.case.index} of {result.case.seed_file}: {'; '.join(result.case.steps)}",
                f"findings: {'; '.join(result.findings)}", f"real mmsd: {result.confirmed or 'not run'}",
                "stderr:", result.stderr[-4000:]]
        path.with_name(path.name + ".txt").write_text("\n".join(note) + "\n")
        kept.append(path)
    return kept


def _group(result: Result) -> str:
    return f"{result.case.entry} (kept files)" if result.case.index < 0 else result.case.entry


def summary(results: Sequence[Result], seed: int, seconds: dict[str, float]) -> str:
    """A markdown table per entry point (kept files apart), then the distinct error lines (digits and
    paths folded). seconds: wall time per group."""
    lines = ["| entry point | inputs | seed | exit 0 | exit 1 | complete outputs | tracebacks | hangs | other exits "
             f"| half-written | {PYTHON_TEXT} | confirmed by `mmsd` | wall s | longest run s |", "|" + "---|" * 14]
    for group in dict.fromkeys(map(_group, results)):
        mine = [r for r in results if _group(r) == group]

        def count(test) -> int:
            return sum(1 for r in mine if test(r))

        lines.append(
            f"| {group} | {len(mine)} | {'-' if mine[0].case.index < 0 else seed} "
            f"| {count(lambda r: r.exit_code == 0)} "
            f"| {count(lambda r: r.exit_code == 1)} | {count(lambda r: r.wrote and not r.problems)} "
            f"| {count(lambda r: 'traceback' in r.findings)} "
            f"| {count(lambda r: r.exit_code is None)} "
            f"| {count(lambda r: r.exit_code is not None and r.exit_code not in (0, 1))} "
            f"| {count(lambda r: any(f.startswith('half-written') for f in r.findings))} "
            f"| {count(lambda r: any(f.startswith(PYTHON_TEXT) for f in r.findings))} "
            f"| {count(lambda r: r.confirmed and not r.confirmed.startswith('not'))} "
            f"| {seconds[group]:.0f} | {max(r.seconds for r in mine):.1f} |")
    messages: dict[str, int] = {}
    for result in results:
        line = result.error_line()
        if line:
            line = re.sub(r"(/[^\s:,()]+)+", "PATH", re.sub(r"\d+", "N", line))
            messages[line] = messages.get(line, 0) + 1
    lines += ["", "error lines (digits -> N, paths -> PATH):"]
    lines += [f"{n:5d}  {line}" for line, n in sorted(messages.items(), key=lambda item: -item[1])]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the seeds


def make_seeds(folder: Path) -> None:
    """Write the default seeds: a 128x72 synthetic speaker (Haar finds the face), 2 s at 30 fps with
    sound, a variable-rate one (30 then 15 fps, 1.8 s), and what `mmsd encode` sends of them
    (with side information; without sound; variable rate; Matroska). `mmsd personalize` wants at
    least about 1.5 s of footage."""
    from fractions import Fraction

    from mmsd import cli
    from mmsd.data.synth.generate import SynthConfig, write_clip
    from mmsd.media import codec
    from mmsd.media.timing import FrameTiming

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        cfg = SynthConfig(out=Path(scratch), actors=(1,), width=128, height=72, statements=(1,))
        clip = write_clip(cfg, 1, cfg.states[0], 1, 1)
        frames = list(codec.read_frames(clip))[:60]
        sound = codec.read_audio(clip, 16000)
        reproducible = {"threads": "1", "x264-params": "mbtree=0"}
        timings = {"original.mp4": FrameTiming.constant(30),
                   "original-vfr.mp4": FrameTiming.from_pts([*range(0, 36, 2), *range(36, 108, 4)], Fraction(1, 60)),
                   "silent.mp4": FrameTiming.constant(30)}
        for name, timing in timings.items():
            path = Path(scratch) / name if name == "silent.mp4" else folder / name
            count = len(timing.pts) or len(frames)
            seconds = float(timing.seconds(count - 1) + timing.intervals[1])
            with codec.VideoWriter(path, width=128, height=72, timing=timing, crf=30, preset="medium",
                                   audio_rate=None if name == "silent.mp4" else 16000, audio_bitrate=24000,
                                   x264_options=reproducible) as writer:
                for frame in frames[:count]:
                    writer.write(frame)
                if name != "silent.mp4":
                    writer.write_audio(sound[:round(seconds * 16000)])
        track = Path(scratch) / "track.csv"
        track.write_text("frame,state\n0,happy-strong\n20,sad-normal\n40,neutral\n")
        for src, dst, extra in [("original.mp4", "sent.mp4", ["--emotion-track", str(track)]),
                                ("original.mp4", "sent.mkv", ["--emotion", "angry-strong"]),
                                (Path(scratch) / "silent.mp4", "sent-silent.mp4", ["--emotion", "calm-normal"]),
                                ("original-vfr.mp4", "sent-vfr.mp4", [])]:
            argv = ["encode", str(folder / src), "-o", str(folder / dst), "--crf", "36", "--audio-kbps", "16", "-q"]
            assert cli.main([*argv, *extra]) == 0


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, help="damaged files per entry point (default 100, or 0 with --replay)")
    parser.add_argument("--seed", type=int, default=0, help="the mutations' seed (default 0)")
    parser.add_argument("--entry", nargs="+", choices=sorted(ENTRY_POINTS), default=list(ENTRY_POINTS),
                        help="entry points (default all)")
    parser.add_argument("--case", type=int, nargs="+", help="only these case indexes (to replay one)")
    parser.add_argument("--seeds", type=Path, default=SEEDS, help=f"seed folder (default {SEEDS.relative_to(ROOT)})")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (default 1)")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help=f"seconds per run (default {TIMEOUT:g})")
    parser.add_argument("--subprocess", action="store_true", help="every run through the real `mmsd` command")
    parser.add_argument("--crashes", type=Path, default=Path("fuzz-crashes"), help="where findings are copied")
    parser.add_argument("--report", type=Path, help="also write the summary and every finding as JSON here")
    parser.add_argument("--replay", type=Path, nargs="+", metavar="FILE", help="run kept files as they are")
    parser.add_argument("--make-seeds", type=Path, metavar="DIR", help="write the default seeds to DIR and stop")
    parser.add_argument("--call", nargs="+", help=argparse.SUPPRESS)  # --subprocess runs a `CALLS` entry so
    args = parser.parse_args(argv)
    if args.call:
        return _console_script(args.call)
    if args.make_seeds:
        make_seeds(args.make_seeds)
        return 0
    batches = {f"{entry} (kept files)": [case for case in map(replay_case, args.replay or ()) if case.entry == entry]
               for entry in ENTRY_POINTS}
    n = args.n if args.n is not None else 0 if args.replay else 100
    if n or args.case:
        seeds = read_seeds(args.seeds)
        batches |= {entry: [make_case(entry, i, args.seed, seeds) for i in (args.case or range(n))]
                    for entry in args.entry}
    results, seconds = [], {}
    with tempfile.TemporaryDirectory(prefix="mmsd-fuzz-") as work:
        for name, cases in batches.items():
            if not cases:
                continue
            print(f"{name}: {len(cases)} case(s)", flush=True)
            start = time.perf_counter()
            results += run_cases(cases, Path(work), jobs=args.jobs, timeout=args.timeout,
                                 use_subprocess=args.subprocess)
            seconds[name] = time.perf_counter() - start
    text = summary(results, args.seed, seconds)
    print(text)
    kept = keep_findings(results, args.crashes)
    if kept:
        print(f"{len(kept)} finding(s) kept in {args.crashes}/")
    if args.report:
        args.report.write_text(json.dumps({
            "seed": args.seed, "n": n, "summary": text,
            "findings": [{"entry": r.case.entry, "case": r.case.index, "seed_file": r.case.seed_file,
                          "steps": r.case.steps, "findings": r.findings, "confirmed": r.confirmed,
                          "stderr": r.stderr[-2000:]} for r in results if r.findings]}, indent=1) + "\n")
    return 1 if kept else 0


if __name__ == "__main__":
    sys.exit(main())
