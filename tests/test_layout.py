"""The layout is the architecture: folders are layers, and a layer imports only the layers below it.

    commands (and cli) > training > evaluation > restore, sender > models, data > media > emotions, errors

Siblings on one rank (models and data; restore and sender) do not import each other. The rule is read from
the source with `ast`, imports inside functions included, so a lazy import cannot hide an upward arrow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mmsd

PACKAGE = Path(mmsd.__file__).parent

# top-level name (package or module of mmsd/) -> rank; a module may import its own package and lower ranks
RANKS = {
    "emotions": 0, "errors": 0,
    "media": 1,
    "models": 2, "data": 2,
    "restore": 3, "sender": 3,
    "evaluation": 4,
    "training": 5,
    "commands": 6, "cli": 6, "__init__": 6,
    "web": 7,  # `mmsd serve`: a page over the commands (it lists the models as `mmsd models` does)
}
MAX_TOP_MODULES = 8
MAX_LINES = 600


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _layer(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _named_imports(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, module, name or None) of every absolute `mmsd` import in `path`, lazy ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, None) for alias in node.names if alias.name.startswith("mmsd")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("mmsd"):
            found += [(node.lineno, node.module, alias.name) for alias in node.names]
    return found


def _mmsd_imports(path: Path) -> set[str]:
    """The top-level names of mmsd that `path` imports (`from mmsd import x` counts as x)."""
    names = set()
    for _, module, name in _named_imports(path):
        full = f"mmsd.{name}" if module == "mmsd" and name else module
        if full == "mmsd":  # `import mmsd`: only the package's own docstring and version
            names.add("__init__")
        elif full.startswith("mmsd."):
            names.add(full.split(".")[1])
    return names


def test_every_layer_has_a_rank():
    layers = {_layer(p) for p in _modules()}
    assert not layers - RANKS.keys(), f"give these a rank in RANKS: {sorted(layers - RANKS.keys())}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_layer_above_its_own(path):
    layer = _layer(path)
    rank = RANKS[layer]
    upward = {name for name in _mmsd_imports(path) - {layer, "__init__"}
              if name in RANKS and RANKS[name] >= rank}
    assert not upward, (f"{path.relative_to(PACKAGE)} (layer {layer}, rank {rank}) imports "
                        + ", ".join(f"{n} (rank {RANKS[n]})" for n in sorted(upward)))


def test_few_modules_at_the_top():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, f"{len(top)} modules directly in mmsd/: {top}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_over_600_lines_unless_it_says_why(path):
    text = path.read_text()
    lines = text.count("\n")
    if lines > MAX_LINES:
        head = "\n".join(text.splitlines()[:15]).lower()
        assert "lines" in head and "because" in head, (
            f"{path.relative_to(PACKAGE)}: {lines} lines; split it along a seam or say why in its first lines")


def test_every_mmsd_import_of_the_package_and_the_scripts_resolves():
    # the scripts import lazily, inside functions: a module that moved left `personal_check.py` importing
    # `mmsd.data.dataset.realvideo` unnoticed until someone ran the protocol
    import importlib

    broken = []
    for path in [*_modules(), *sorted((PACKAGE.parent / "scripts").glob("*.py"))]:
        for line, module, name in _named_imports(path):
            try:
                imported = importlib.import_module(module)
                if name is not None and not hasattr(imported, name):
                    importlib.import_module(f"{module}.{name}")
            except ImportError:
                broken.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {module}{'.' + name if name else ''}")
    assert not broken, "imports that do not resolve:\n" + "\n".join(broken)
