"""The import contracts of the root pyproject catch a node that imports an executor.

``nox -s lint`` runs ``lint-imports`` over the installed packages. Here the core contracts (read
from the root pyproject, so the test checks the contracts the lint session enforces) run over a
copy of core's source: unmodified, the contracts hold (so the check below cannot pass by
accident); with one wrong import added to ``magnus/nodes/stub.py``, they are broken.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import import_contracts  # noqa: E402 - the writer nox -s lint uses

CORE_SOURCE = ROOT / "packages" / "magnus-core" / "src" / "magnus"

# The contracts about core alone (the plugin contracts need every plugin package importable).
CORE_CONTRACTS = ("core-layers", "core-nodes-are-descriptions")
WRONG_IMPORT = "from magnus.executor.local import LocalExecutor  # noqa\n"


def _core_contracts() -> List[Dict[str, Any]]:
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    chosen = [contract for contract in settings["contracts"] if contract.get("id") in CORE_CONTRACTS]
    assert sorted(contract["id"] for contract in chosen) == sorted(CORE_CONTRACTS)
    assert not settings.get("exclude_type_checking_imports", False), "TYPE_CHECKING imports must count"
    return chosen


def _lint_imports() -> str:
    beside_python = Path(sys.executable).parent / "lint-imports"
    found = str(beside_python) if beside_python.is_file() else shutil.which("lint-imports")
    assert found, "import-linter is not installed (nox -s tests-acceptance installs it)"
    return found


@pytest.fixture
def core_copy(tmp_path: Path) -> Path:
    """A copy of core's source under ``tmp_path/src``; returns the copied ``magnus`` folder."""
    target = tmp_path / "src" / "magnus"
    shutil.copytree(CORE_SOURCE, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return target


def _run_contracts(core_copy: Path) -> subprocess.CompletedProcess[str]:
    config = core_copy.parent.parent / "core-contracts.toml"
    import_contracts.write_config(config, ["magnus"], _core_contracts())
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join([str(core_copy.parent), *filter(None, [environment.get("PYTHONPATH")])])
    return subprocess.run(
        [_lint_imports(), "--no-cache", "--no-logo", str(config)],
        cwd=core_copy.parent.parent,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _contract_names() -> Dict[str, str]:
    return {contract["id"]: contract["name"] for contract in _core_contracts()}


def test_the_contracts_hold_on_core_as_it_is(core_copy: Path) -> None:
    result = _run_contracts(core_copy)

    assert result.returncode == 0, result.stdout + result.stderr
    for name in _contract_names().values():
        assert f"{name} KEPT" in result.stdout


def test_a_node_importing_an_executor_breaks_the_contracts(core_copy: Path) -> None:
    stub = core_copy / "nodes" / "stub.py"
    stub.write_text(stub.read_text() + WRONG_IMPORT)

    result = _run_contracts(core_copy)

    assert result.returncode != 0, result.stdout + result.stderr
    names = _contract_names()
    assert f"{names['core-nodes-are-descriptions']} BROKEN" in result.stdout, result.stdout
    assert f"{names['core-layers']} BROKEN" in result.stdout, result.stdout
    # The copy was checked, not the installed core: the report names the added import.
    assert "magnus.nodes.stub -> magnus.executor.local" in result.stdout, result.stdout
