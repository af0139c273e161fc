"""scripts/train_shipped.py and what follows from it: the shipped models all follow one stage-2 recipe (those
shipped from stage 3 the stage-3 recipe of record on top), and
`make spread` evaluates the second seeds of that recipe (not those of an older one)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from mmsd.models import weights

ROOT = Path(__file__).resolve().parent.parent


def _train_shipped():
    spec = importlib.util.spec_from_file_location("train_shipped", ROOT / "scripts" / "train_shipped.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_shipped_model_was_tuned_with_the_recipe_of_record():
    script = _train_shipped()
    folder = script.REAL_RECIPES[script.REAL_RECIPE][0]
    cards = {name: (weights.SHIPPED_DIR / f"{name}.md").read_text() for name in script.REAL_MODELS
             if name not in script.NOT_SHIPPED}
    assert len(cards) == 8
    for name, card in cards.items():
        if name in script.STAGE3_SHIPPED:  # stage 3 (real video) tuned the stage-2 weights further
            recipe = script.STAGE3_SHIPPED[name]
            assert f"--stage video --recipe {recipe} {name}`" in card, name
            assert f"shipped up to commit {script.STAGE2_COMMIT}" in card, name
            continue
        commit, path = script.stage1_source(name)
        if commit == script.STAGE1_COMMIT:
            assert f"(copied to `runs/{folder}/{name}.start.safetensors`)" in card, name
        else:  # added after stage 1 was shipped: its stage-1 weights are kept in the repository
            assert f"kept as `{path}` (commit {commit})" in card, name
            assert (ROOT / path).is_file(), path
        assert "--recipe" not in card, f"{name}: trained with another recipe than REAL_RECIPE"


def test_make_spread_reads_the_second_seeds_of_the_shipped_recipe():
    script = _train_shipped()
    (stage2,) = re.findall(r"^STAGE2 := (\S+)$", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)
    assert stage2 == f"runs/{script.REAL_RECIPES[script.REAL_RECIPE][0]}"
    assert set(script.NOT_SHIPPED) == {"mmsd-seed1", "edvr-seed1"}


def test_the_decoders_default_models_are_shipped():
    """`mmsd decode` without --model (and with --low-latency) finds its model in a fresh install."""
    from mmsd.restore.loading import DEFAULT_MODEL, LOW_LATENCY_MODEL, load_network

    for name, causal in ((DEFAULT_MODEL, False), (LOW_LATENCY_MODEL, True)):
        assert (weights.SHIPPED_DIR / f"{name}.safetensors").is_file(), name
        assert (weights.SHIPPED_DIR / f"{name}.md").is_file(), name
        _, config, _ = load_network(name)
        assert bool(config.get("causal", False)) is causal, name


def test_make_data3_builds_every_cache_stage_3_reads():
    """`make data3` is what a fresh session runs before stage 3: it must write every cache the recipes mix."""
    script = _train_shipped()
    makefile = (ROOT / "Makefile").read_text()
    (s3,) = re.findall(r"^S3 := (\S+)$", makefile, flags=re.MULTILINE)
    assert s3 == script.S3
    built = {out.replace("$(S3)", s3) for out in re.findall(r"--out (\S+)", makefile)}
    for _, arguments in script.VIDEO_RECIPES.values():
        mixed = [a.rsplit(":", 1)[0] for a in arguments[arguments.index("--mix") + 1:] if ":" in a]
        assert mixed and set(mixed) <= built, set(mixed) - built
    assert f"{s3}/cache" in built  # the main cache (`--data` of stage 3)
