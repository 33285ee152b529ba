"""Reading the YAML files users write (pipelines, configs, parameters) with errors that name them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Optional


def load_yaml(path: str, what: str, error: Callable[[str], Exception]) -> Any:
    """The document in ``path``; a missing file or bad YAML raises ``error`` naming the file.

    ``what`` says which file it is (``pipeline file``, ``parameters file``, ...).
    """
    import yaml

    file = Path(path)
    if not file.is_file():
        raise error(f"{path}: {what} not found")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when the wheel has it: ~50x faster
    try:
        return yaml.load(file.read_text(), Loader=loader)
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from exc


def load_yaml_mapping(
    path: str, what: str, error: Callable[[str], Exception], expected: Optional[str] = None
) -> Dict[str, Any]:
    """Like :func:`load_yaml`, for files that must hold a mapping (an empty file is ``{}``)."""
    content = load_yaml(path, what, error)
    if content is None:
        return {}
    if not isinstance(content, dict):
        shape = expected or "a mapping"
        raise error(f"{path}: a {what} must be {shape}, got {type(content).__name__}")
    return content
