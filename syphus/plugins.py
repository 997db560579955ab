"""Plugins: dataset classes found by path in ``datasets/*.py``, resolved from ``--name``.

``--name`` may be ``module.Class`` (``video.DenseCaptions``, also ``3d.SceneNavigation``),
``Class.module`` (the public README's ``YourDataset.your_dataset``), or a bare
``Class`` when exactly one plugin defines it. There is no registry: a file
dropped into the folder is a plugin. Plugins written for the original Syphus
import ``abstract_dataset``; that name is served by ``syphus.dataset``.

>>> cls, path = resolve("Example.example", "datasets")   # doctest: +SKIP
>>> dataset = instantiate(cls, path)                      # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import re
import sys
import traceback
from pathlib import Path
from types import ModuleType

import syphus.dataset
from syphus.dataset import AbstractDataset, path_overrides
from syphus.errors import UserError

_loaded: dict[Path, ModuleType] = {}


def plugin_files(folder: str | Path) -> list[Path]:
    """The plugin files in ``folder``, sorted; files starting with ``_`` are helpers, not plugins."""
    d = Path(folder)
    if not d.is_dir():
        raise UserError(f"{d}: no datasets folder here (looked in {d.resolve()}); run from the project "
                        "folder or set datasets_dir")
    return sorted(p for p in d.glob("*.py") if not p.name.startswith("_"))


def load_module(path: Path) -> ModuleType:
    """Import one plugin file by path (once), with the original ``abstract_dataset`` name available."""
    path = path.resolve()
    if path in _loaded:
        return _loaded[path]
    sys.modules.setdefault("abstract_dataset", syphus.dataset)
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.append(folder)  # plugins may import helper modules beside them
    safe = re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(f"syphus_plugin_{safe}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except UserError:
        raise
    except Exception as e:
        sys.modules.pop(spec.name, None)
        frame = traceback.extract_tb(e.__traceback__)[-1]
        raise UserError(f"{path}: plugin failed to import at line {frame.lineno} "
                        f"({type(e).__name__}: {e}); fix it or move it out of the datasets folder") from e
    _loaded[path] = module
    return module


def classes_in(module: ModuleType) -> dict[str, type[AbstractDataset]]:
    """Dataset classes defined in ``module`` itself (not imported into it)."""
    return {name: obj for name, obj in vars(module).items()
            if isinstance(obj, type) and issubclass(obj, AbstractDataset) and obj is not AbstractDataset
            and obj.__module__ == module.__name__}


def available(folder: str | Path) -> list[str]:
    """Every ``module.Class`` name in the folder (importing each plugin)."""
    names = []
    for path in plugin_files(folder):
        names += [f"{path.stem}.{c}" for c in classes_in(load_module(path))]
    return names


def resolve(name: str, folder: str | Path) -> tuple[type[AbstractDataset], Path]:
    """The class ``--name`` refers to, and the file that defines it."""
    files = {p.stem: p for p in plugin_files(folder)}
    if "." in name:
        left, right = name.split(".", 1)
        for module_name, class_name in ((left, right), (right, left)):
            if module_name in files:
                classes = classes_in(load_module(files[module_name]))
                if class_name in classes:
                    return classes[class_name], files[module_name]
        for module_name in (left, right):
            if module_name in files:
                classes = classes_in(load_module(files[module_name]))
                raise UserError(f"--name {name}: {files[module_name]} defines no dataset class "
                                f"{(right if module_name == left else left)!r}; it defines: "
                                f"{', '.join(classes) or 'none'}")
        bare = None
    else:
        bare = name
    if bare is not None:
        hits = [(c, p) for p in files.values() for n, c in classes_in(load_module(p)).items() if n == bare]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            where = ", ".join(f"{p.stem}.{bare}" for _, p in hits)
            raise UserError(f"--name {name}: several plugins define {bare!r} ({where}); name one as module.Class")
    raise UserError(f"--name {name}: no such dataset in {Path(folder)}/. Available: "
                    f"{', '.join(available(folder)) or 'none'} (write module.Class, Class.module or a unique Class)")


def instantiate(cls: type[AbstractDataset], path: Path, prompt_path: str | None = None,
                query_inputs_path: str | None = None) -> AbstractDataset:
    """Build the dataset the way the original CLI did (no arguments), applying path overrides.

    A plugin's query inputs must not come out empty: that is a wrong path or format, said in one line
    (``AbstractDataset.empty_is_error``) rather than a run that completes with nothing.
    """
    dataset = _construct(cls, path, prompt_path, query_inputs_path)
    dataset.empty_is_error = True
    return dataset


def _construct(cls: type[AbstractDataset], path: Path, prompt_path: str | None,
               query_inputs_path: str | None) -> AbstractDataset:
    """``cls()`` with the path overrides applied, its failures turned into UserErrors naming ``path``."""
    overrides = {k: v for k, v in (("prompt_path", prompt_path), ("query_inputs_path", query_inputs_path)) if v}
    token = path_overrides.set(overrides)
    try:
        return cls()
    except UserError:
        raise
    except FileNotFoundError as e:
        raise UserError(f"{path}: {cls.__name__}() could not open {e.filename!r} ({e.strerror}); relative paths "
                        f"are read from {Path.cwd()}: run from the project folder or pass --prompt_path / "
                        "--query_inputs_path") from e
    except TypeError as e:
        if "abstract" in str(e):
            raise UserError(f"{path}: {cls.__name__} must define _load_query_inputs(self, path), "
                            "returning or yielding {'id', 'sentences'} items") from e
        raise _plugin_error(cls, path, e) from e
    except Exception as e:
        raise _plugin_error(cls, path, e) from e
    finally:
        path_overrides.reset(token)


def _plugin_error(cls: type, path: Path, e: Exception) -> UserError:
    frames = [f for f in traceback.extract_tb(e.__traceback__)]
    line = next((f.lineno for f in reversed(frames) if Path(f.filename).resolve() == path.resolve()), None)
    at = f" at line {line}" if line else ""
    return UserError(f"{path}{(':' + str(line)) if line else ''}: {cls.__name__}() failed{at}: "
                     f"{type(e).__name__}: {e}")
