"""The import contracts ``lint-imports`` checks, for every package under packages/ (``nox -s lint``).

Core's contracts (its layers; nodes never reach the runtime) are the root pyproject's. The
plugins' two are made here for every package found under ``packages/<distribution>/src/<name>``,
so a new package is held to them without editing a list: a plugin imports only core's public
modules, and no plugin imports another.

    python scripts/import_contracts.py OUTPUT.toml   # then: lint-imports --config OUTPUT.toml
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Sequence

import tomllib

ROOT = Path(__file__).resolve().parents[1]
# Core's modules a plugin must not import (a plugin reaches the orchestrator through magnus.executor.base).
PRIVATE_CORE = [
    "magnus.cli",
    "magnus.entrypoints",
    "magnus.sdk",
    "magnus.runtime.orchestrator",
    "magnus.diagram",
    "magnus.config",
]


def import_names(root: Path = ROOT) -> List[str]:
    """The import name of every package of the repository."""
    return sorted(path.parent.name for path in (root / "packages").glob("*/src/*/__init__.py"))


def contracts(root: Path = ROOT) -> List[Dict[str, Any]]:
    """Core's contracts (from the root pyproject) and the plugins' (for every other package)."""
    plugins = [name for name in import_names(root) if name != "magnus"]
    core: List[Dict[str, Any]] = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"
    ]
    return [
        *core,
        {
            "id": "plugins-use-public-core",
            "name": "Plugins import only core's public modules",
            "type": "forbidden",
            "source_modules": plugins,
            "forbidden_modules": PRIVATE_CORE,
            "allow_indirect_imports": True,  # only a plugin's own imports
        },
        {
            "id": "plugins-independent",
            "name": "Plugins are independent of one another",
            "type": "independence",
            "modules": plugins,
        },
    ]


def write_config(path: Path, root_packages: Sequence[str], chosen: Sequence[Dict[str, Any]]) -> None:
    """An import-linter configuration (TOML) of ``chosen`` contracts over ``root_packages``."""
    lines = [
        "[tool.importlinter]",
        f"root_packages = {_toml(list(root_packages))}",
        "exclude_type_checking_imports = false",
    ]
    for contract in chosen:
        lines += [
            "",
            "[[tool.importlinter.contracts]]",
            *(f"{key} = {_toml(value)}" for key, value in contract.items()),
        ]
    path.write_text("\n".join(lines) + "\n")


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


if __name__ == "__main__":
    write_config(Path(sys.argv[1]), import_names(), contracts())
