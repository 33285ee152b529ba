"""``import magnus`` and ``magnus --help`` stay light: no plugin, no heavy dependency on start-up."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = [
    "pydantic",
    "yaml",
    "magnus.sdk",
    "magnus.executor",
    "hera",
    "docker",
    "mlflow",
    "ploomber_engine",
    "magnus.runs.store",  # `magnus runs` loads its work when a command runs
    "magnus.runs.report",
]


def loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def test_import_magnus_is_light() -> None:
    modules = loaded_after("import magnus")
    assert [name for name in HEAVY if name in modules] == []


def test_cli_help_is_light() -> None:
    show_help = (
        "from magnus.cli import cli\n"
        "try:\n    cli.main(['--help'], standalone_mode=False)\n"
        "except SystemExit:\n    pass"
    )
    modules = loaded_after(show_help)
    assert [name for name in HEAVY if name in modules] == []


def test_public_names_resolve_lazily() -> None:
    import magnus

    assert magnus.Pipeline.__name__ == "Pipeline"
    assert callable(magnus.get_parameter)
