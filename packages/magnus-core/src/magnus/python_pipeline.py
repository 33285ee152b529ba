"""Pipelines written in python, named where a YAML file would be: ``-f pipeline.py`` or ``-f module:name``.

``magnus execute``, ``graph`` and ``plan`` take the pipeline a python file or module holds: the one
`Pipeline` at its top level, or what its function named ``pipeline`` returns; ``file.py:name`` or
``module:name`` names one (a `Pipeline`, or a function returning one). The file is imported under a
name of its own, not as ``__main__``, so its ``if __name__ == "__main__":`` block does not run.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Tuple

from magnus.errors import UserInputError

if TYPE_CHECKING:
    from magnus import sdk
    from magnus.runtime.services import Pipeline as ParsedPipeline

# The function a file may define instead of a top-level Pipeline.
BUILDER = "pipeline"


def is_python_source(spec: str) -> bool:
    """Whether ``spec`` names a python pipeline (``x.py``, ``x.py:name``, ``package.module:name``)."""
    path = spec.split(":", 1)[0]
    return path.endswith(".py") or (":" in spec and not path.endswith((".yaml", ".yml")))


def load_any(spec: str) -> "ParsedPipeline":
    """The pipeline ``spec`` names, parsed and checked: a YAML file, or a python one (see the module).

    Raises:
        PipelineDefinitionError: the pipeline is malformed.
        UserInputError: a python source holds no pipeline (see [`load_python_pipeline`][]).
    """
    if is_python_source(spec):
        built, _ = load_python_pipeline(spec)
        return built.parsed
    from magnus.entrypoints import load_pipeline

    return load_pipeline(spec)


def load_python_pipeline(spec: str) -> Tuple["sdk.Pipeline", str]:
    """The SDK pipeline ``spec`` names, and the file it came from.

    Raises:
        UserInputError: the file or module cannot be imported, holds no pipeline, or several where
            one is expected (each named), or the name given is not a pipeline.
    """
    source, _, attribute = spec.rpartition(":") if ":" in spec else (spec, "", "")
    module, origin = _imported(source)
    if attribute:
        return _pipeline_of(getattr(module, attribute, None), f"{source}:{attribute}"), origin
    from magnus.sdk import Pipeline

    found = [name for name, value in vars(module).items() if isinstance(value, Pipeline)]
    builder = vars(module).get(BUILDER)
    if callable(builder) and not isinstance(builder, Pipeline):
        return _pipeline_of(builder, f"{source}:{BUILDER}"), origin
    if len(found) == 1:
        return getattr(module, found[0]), origin
    if not found:
        raise UserInputError(
            f"{source}: no Pipeline at its top level and no function named '{BUILDER}' (name one with -f {source}:NAME)"
        )
    names = ", ".join(sorted(found))
    raise UserInputError(f"{source}: {len(found)} pipelines at its top level ({names}): name one with -f {source}:NAME")


def _imported(source: str) -> Tuple[Any, str]:
    """The module of a python file (imported under a name of its own) or a dotted module name."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)  # the project's modules (its steps) import as a task's command does
    if source.endswith(".py"):
        path = Path(source)
        if not path.is_file():
            raise UserInputError(f"pipeline file '{source}' not found")
        name = f"magnus_pipeline_{abs(hash(str(path.resolve())))}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise UserInputError(f"{source}: not a python file magnus can import")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        loader = spec.loader
        _running_import(lambda: loader.exec_module(module), source)
        return module, str(path)
    module = _running_import(lambda: importlib.import_module(source), source)
    return module, str(getattr(module, "__file__", "") or source)


def _running_import(load: Any, source: str) -> Any:
    """``load()``, a failure of the user's module said on one line."""
    from magnus.errors import MagnusError

    try:
        return load()
    except MagnusError:
        raise
    except ModuleNotFoundError as exc:
        raise UserInputError(f"{source}: cannot import it: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the user's module failed as it was imported: said in one line
        raise UserInputError(f"{source}: importing it failed: {type(exc).__name__}: {exc}") from None


def _pipeline_of(value: Any, named: str) -> "sdk.Pipeline":
    """``value`` as a Pipeline: itself, or what it returns when it is a function."""
    from magnus.sdk import Pipeline

    if callable(value) and not isinstance(value, Pipeline):
        value = _running_import(value, named)
    if not isinstance(value, Pipeline):
        kind = "nothing" if value is None else type(value).__name__
        raise UserInputError(f"{named}: expected a Pipeline (or a function returning one), got {kind}")
    return value


__all__: List[str] = ["BUILDER", "is_python_source", "load_any", "load_python_pipeline"]
