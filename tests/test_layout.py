"""The package's shape, checked so it cannot drift: the map names every module, only the CLI speaks,
no module imports another's private names, batch does not reach into the online runner, and every
import goes to the module's own floor or below (root < plugin layer < engine < release < workflows < cli)."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import syphus

PACKAGE = Path(syphus.__file__).parent


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


@functools.lru_cache(maxsize=None)  # each module parsed once for every check
def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def test_the_package_map_names_every_module():
    named = set(re.findall(r"``([a-z_]+)``", syphus.__doc__))
    missing = [str(p.relative_to(PACKAGE)) for p in modules()
               if p.stem not in ("__init__", "__main__") and p.stem not in named
               and p.parent.name not in named]  # a package's parts may be named with it
    assert not missing, f"add these to the map in syphus/__init__.py: {missing}"


def test_only_the_cli_prints_exits_or_parses_arguments():
    offenders = []
    for path in modules():
        if "cli" in path.relative_to(PACKAGE).parts or path.stem == "__main__":
            continue
        for node in ast.walk(tree(path)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("print", "exit"):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.func.id}()")
            if isinstance(node, ast.Attribute) and node.attr == "exit" and getattr(node.value, "id", "") == "sys":
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} sys.exit")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if "argparse" in names:
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} imports argparse")
    assert not offenders, offenders


def test_no_module_imports_another_modules_private_names():
    offenders = []
    for path in modules():
        for node in ast.walk(tree(path)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("syphus"):
                offenders += [f"{path.relative_to(PACKAGE)}:{node.lineno} {node.module}.{a.name}"
                              for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    assert not offenders, offenders


def test_batch_and_the_display_do_not_depend_on_the_online_runner():
    for rel in ("engine/batch.py", "cli/progress.py", "engine/stats.py", "engine/record.py"):
        imported = {node.module for node in ast.walk(tree(PACKAGE / rel)) if isinstance(node, ast.ImportFrom)}
        assert "syphus.engine.runner" not in imported, rel


def test_docstrings_do_not_keep_import_lists_by_hand():
    stale = [str(p.relative_to(PACKAGE)) for p in modules() if re.search(r"^Imports:", ast.get_docstring(tree(p)) or "",
                                                                         re.M)]
    assert not stale, f"drop the hand-kept 'Imports:' lines from {stale}"


# --- import floors ------------------------------------------------------------------------------
# Lowest first; a module imports only from its own floor or below (workflows may import release,
# not the other way). A new top-level module must be put on a floor here.
ROOT = {"errors", "textfile", "redaction", "idset", "seen", "signals", "config", "durable", "kinds", "schemaform", "registry"}
PLUGIN_LAYER = {"dataset", "families", "items", "jsonfile", "inputs", "repeats", "onduplicate", "plugins",
                "prompt", "parse", "reply", "frames", "image"}
FLOORS = {**dict.fromkeys(ROOT, 0), **dict.fromkeys(PLUGIN_LAYER, 1), "engine": 2, "release": 3, "workflows": 4,
          "cli": 5, "__main__": 5}
NAMES = {0: "root", 1: "plugin layer", 2: "engine", 3: "release", 4: "workflows", 5: "cli"}
# Imports that still go up, each a debt to remove (none left since the image code moved into the engine); the test fails
# when one is gone and still listed here, so this list only shrinks.
KNOWN_UPWARD: set[tuple[str, str]] = set()


def floor(dotted: str) -> int:
    """The floor of module ``syphus.x.y`` (``syphus`` itself, the version, is the root)."""
    parts = dotted.split(".")
    if len(parts) == 1:
        return 0
    assert parts[1] in FLOORS, f"syphus.{parts[1]} is on no floor: add it to FLOORS in tests/test_layout.py"
    return FLOORS[parts[1]]


def imported(node: ast.AST) -> list[str]:
    """The syphus modules an import statement reads (``from syphus.release import export`` reads
    ``syphus.release.export``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "syphus"]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "syphus":
        out = []
        for a in node.names:
            sub = f"{node.module}.{a.name}"
            is_module = (PACKAGE.parent / sub.replace(".", "/")).with_suffix(".py").exists() or \
                (PACKAGE.parent / sub.replace(".", "/")).is_dir()
            out.append(sub if is_module else node.module)
        return out
    return []


def upward_imports() -> set[tuple[str, str]]:
    found = set()
    for path in modules():
        rel = path.relative_to(PACKAGE)
        own = floor(".".join(("syphus", *rel.with_suffix("").parts)).removesuffix(".__init__"))
        for node in ast.walk(tree(path)):  # imports inside functions count too
            for target in imported(node):
                if floor(target) > own:
                    found.add((rel.as_posix(), target))
    return found


def test_every_module_imports_only_from_its_own_floor_or_below():
    found = upward_imports()
    up = sorted(found - KNOWN_UPWARD)
    assert not up, "imports that go up a floor (" + " < ".join(NAMES.values()) + "): " + ", ".join(
        f"{m} ({NAMES[floor('syphus.' + m[:-3].replace('/', '.'))]}) imports {t} ({NAMES[floor(t)]})" for m, t in up)
    gone = sorted(KNOWN_UPWARD - found)
    assert not gone, f"these imports no longer go up: drop them from KNOWN_UPWARD in tests/test_layout.py: {gone}"


def test_the_floor_check_sees_an_import_that_goes_up(tmp_path):
    node = ast.parse("def f():\n    from syphus.release import export\n")
    assert imported(node.body[0].body[0]) == ["syphus.release.export"]
    assert floor("syphus.release.export") > floor("syphus.engine.store") > floor("syphus.dataset") > floor("syphus")
    assert imported(ast.parse("from syphus.engine.store import PAIRS").body[0]) == ["syphus.engine.store"]


# --- the suite's own shape --------------------------------------------------------------------------
def checks_something(fn: ast.AST) -> bool:
    """A test function that asserts, expects a raise (``pytest.raises``/``warns``/``fail``) or calls an
    ``assert_*``/``check_*`` helper: one that can fail on a wrong result, not only on a crash."""
    for node in ast.walk(fn):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Attribute) and node.attr in ("raises", "warns", "fail"):
            return True
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", "")
            if name.startswith(("assert", "check_")):
                return True
    return False


def test_every_test_checks_something():
    tests = Path(__file__).parent
    silent = [f"{p.name}:{node.lineno} {node.name}" for p in sorted(tests.glob("test_*.py"))
              for node in ast.walk(tree(p))
              if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")
              and not checks_something(node)]
    assert not silent, f"tests that assert nothing (a test that cannot fail is a defect): {silent}"
    assert not checks_something(ast.parse("def test_x():\n    run()\n").body[0])  # the check itself can fail
