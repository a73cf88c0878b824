"""The package layout stays readable: imports form no cycle, few modules sit flat at the top, argparse
lives only in the CLI, no module reaches into another's private names, and shared constants are
defined once. The import graph is built from the source (AST), every import counted, those inside
functions included; only ``if TYPE_CHECKING:`` blocks are left out, as they never run."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "audiotools"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def import_nodes(tree: ast.AST):
    """Every Import/ImportFrom in ``tree`` except those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and is_type_checking(child):
                stack.extend(child.orelse)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child
            stack.append(child)


def absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if MODULES[module].name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str) -> list[tuple[str, list[str]]]:
    """(target module, imported names) for each import of a package module by ``module``."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    out = []
    for node in import_nodes(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name in MODULES]
            continue
        target = absolute(module, node)
        if target not in MODULES:
            continue
        names = []
        for a in node.names:
            if f"{target}.{a.name}" in MODULES:
                out.append((f"{target}.{a.name}", []))
            else:
                names.append(a.name)
        if names:
            out.append((target, names))
    return out


def graph() -> dict[str, set[str]]:
    return {m: {t for t, _ in imports_of(m) if t != m} for m in MODULES}


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(g, WHITE)
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        colour[m] = GREY
        path.append(m)
        for n in sorted(g[m]):
            if colour[n] == GREY:
                return path[path.index(n) :] + [n]
            if colour[n] == WHITE and (c := visit(n)):
                return c
        path.pop()
        colour[m] = BLACK
        return None

    for m in sorted(g):
        if colour[m] == WHITE and (c := visit(m)):
            return c
    return None


def test_the_graph_sees_function_level_imports():
    g = graph()
    # the CLI reaches the engine only inside its handlers: those edges must still be counted
    assert "audiotools.asr.transcribe" in g["audiotools.cli.transcribe_cmd"] | {
        t for n in g["audiotools.cli.transcribe_cmd"] for t in g[n]
    }
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_at_most_twelve_flat_modules():
    flat = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(flat) <= 12, flat


def test_argparse_only_in_the_cli():
    offenders = []
    for m, p in MODULES.items():
        if m.startswith("audiotools.cli"):
            continue
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module == "argparse" or "argparse" in names:
                offenders.append(m)
    assert not offenders


def test_no_private_names_across_modules():
    offenders = [
        f"{m} imports {t}.{n}"
        for m in MODULES
        for t, names in imports_of(m)
        for n in names
        if n.startswith("_") and not n.startswith("__") and t != m
    ]
    assert not offenders, offenders


@pytest.mark.parametrize("name", ["SAMPLE_RATE"])
def test_shared_constants_defined_once(name):
    where = []
    for m, p in MODULES.items():
        for node in ast.parse(p.read_text(encoding="utf-8")).body:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                where.append(m)
    assert len(where) == 1, where


def test_every_exception_class_lives_in_errors():
    outside = []
    for m, p in MODULES.items():
        if m == "audiotools.errors":
            continue
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                (isinstance(b, ast.Name) and (b.id.endswith("Error") or b.id == "Exception"))
                or (isinstance(b, ast.Attribute) and b.attr.endswith("Error"))
                for b in node.bases
            ):
                outside.append(f"{m}.{node.name}")
    assert not outside, outside


def test_public_api_is_lazy_and_complete():
    import subprocess
    import sys

    code = (
        "import sys, audiotools; heavy = {'torch', 'whisper', 'av'} & set(sys.modules); "
        "assert not heavy, heavy; "
        "[getattr(audiotools, n) for n in audiotools.__all__]; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "ok", out.stderr


def test_the_wheel_ships_the_recipes_without_a_symlink(tmp_path):
    """pipelines/*.yaml land in the wheel as audiotools/recipes/, and an installed copy finds them."""
    import subprocess
    import sys
    import zipfile

    root = PACKAGE.parent
    assert not any(p.is_symlink() for p in PACKAGE.rglob("*"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(root),
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    wheel = next(tmp_path.glob("audiotools-*.whl"))
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        z.extractall(site)
    for recipe in (root / "pipelines").glob("*.yaml"):
        assert f"audiotools/recipes/{recipe.name}" in names
    code = (
        "import audiotools.pipeline.recipe as r; rs = r.available_recipes(); "
        "print(';'.join(sorted(rs)), rs['default'].parent.name, r.load_recipe('gpu-batch').name)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    shipped = ";".join(sorted(p.stem for p in (root / "pipelines").glob("*.yaml")))
    assert {"default", "fast-cpu", "gpu-batch", "ru-phone"} <= set(shipped.split(";"))
    assert out.stdout.split() == [shipped, "recipes", "gpu-batch"], out.stderr
