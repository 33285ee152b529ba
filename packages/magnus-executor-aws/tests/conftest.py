"""What the tests of the aws executor check against: the States Language validator, and moto's server.

- ``asl_validator``: the ``asl-validator`` npm package (pinned), installed once per machine under
  ``~/.cache/magnus-asl-validator`` with npm (``scripts/install-test-tools`` installs npm).
- ``emulator``: moto's server as Step Functions, Batch, S3 and Secrets Manager
  (:func:`magnus_executor_aws.testing.start_emulator`), once per test module that uses it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable, Dict, Iterator

import pytest

from magnus_executor_aws.testing import Emulator, start_emulator

ASL_VALIDATOR = "asl-validator@4.0.0"
CACHE = Path(os.environ.get("MAGNUS_NPM_CACHE", Path.home() / ".cache" / "magnus-asl-validator"))


@pytest.fixture(scope="session")
def asl_validator(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Dict[str, Any]], str]:
    """Checks a definition with asl-validator; returns its output (fails the test when it is invalid)."""
    program = CACHE / "node_modules" / ".bin" / "asl-validator"
    if not program.exists():
        if shutil.which("npm") is None:
            raise RuntimeError("npm is not installed: apt-get install npm (scripts/install-test-tools does)")
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(CACHE), ASL_VALIDATOR],
            check=True,
            capture_output=True,
        )
    folder = tmp_path_factory.mktemp("asl")

    def validate(definition: Dict[str, Any]) -> str:
        path = folder / "definition.json"
        path.write_text(json.dumps(definition))
        checked = subprocess.run([str(program), "--json-path", str(path)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        return checked.stdout

    return validate


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    started = start_emulator(run_jobs=False)
    try:
        yield started
    finally:
        started.stop()
