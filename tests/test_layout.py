"""The package's shape, checked so it cannot drift: the map names every module, only the CLI speaks,
no module imports another's private names, batch does not reach into the online runner."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import syphus

PACKAGE = Path(syphus.__file__).parent


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


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
