"""The package's imports follow the data path and form no circle: read from the source with `ast`
(top-level and function-level imports alike), so a lazy import cannot hide a wrong direction."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "liveworld"

# The allowed order, written once: a module may import its own layer and the layers above it.
# flow/ and eval/metrics are pure math (tensors in, tensors out, nothing of liveworld imported),
# so every stage may use them: training a tokenizer reports PSNR without importing the eval.
# train/ comes after eval/ here though the data flows through it first: the engine, the server
# and the eval run a trained model and never import the training loop.
LAYERS: list[tuple[str, ...]] = [
    ("common", "checkpoint", "bundled"),
    ("flow", "eval.metrics"),
    ("data",),
    ("tokenizers",),
    ("model",),
    ("world",),
    ("engine",),
    ("envs", "serve"),
    ("eval",),
    ("train",),
    ("bench",),
    ("cli", "__init__"),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _runtime_nodes(tree: ast.AST):
    """Every node except those under `if TYPE_CHECKING:` (annotations only, never imported)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def imports_of(path: Path) -> set[str]:
    """The liveworld modules a file imports at run time, as names under the package (`model.omni`)."""
    out: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        out |= {n.removeprefix("liveworld.") for n in names if n.startswith("liveworld.")}
    return out


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    return {m: {i for i in imports_of(p) if i in files and i != m} for m, p in files.items()}


def layer(module: str) -> int:
    best, rank = -1, None
    for i, names in enumerate(LAYERS):
        for n in names:  # the longest matching prefix decides: eval.metrics before eval
            if (module == n or module.startswith(n + ".")) and len(n) > best:
                best, rank = len(n), i
    assert rank is not None, f"liveworld.{module} belongs to no layer: add its folder to LAYERS"
    return rank


def test_imports_go_down_the_data_path():
    wrong = [f"liveworld.{m} imports liveworld.{i} ({LAYERS[layer(i)][0]} comes after {LAYERS[layer(m)][0]})"
             for m, deps in graph().items() for i in deps if layer(i) > layer(m)]
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_circle():
    g = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    circles: list[str] = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for i in sorted(g[m]):
            if state.get(i) == 1:
                circles.append(" -> ".join(path[path.index(i):] + [m, i]) if i in path else f"{m} -> {i}")
            elif i not in state:
                visit(i, path + [m])
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [])
    assert not circles, "\n".join(circles)


def test_the_checker_sees_a_wrong_import(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("def f():\n    from liveworld.train.loop import train\n"
                   "if TYPE_CHECKING:\n    from liveworld.eval.evaluate import evaluate\n")
    assert "train.loop" in imports_of(bad) and "eval.evaluate" not in imports_of(bad)
    for importer in ("engine.runner", "eval.evaluate", "serve.app", "model.omni"):
        assert layer("train.loop") > layer(importer), importer  # would be reported
    assert layer("eval.metrics") < layer("tokenizers.video") < layer("eval.evaluate")
