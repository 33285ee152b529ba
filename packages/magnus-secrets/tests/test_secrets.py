"""Both backends against the magnus.testing contract, and no secret in anything a run writes."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Dict, Iterator

import pytest
import yaml

from magnus.entrypoints import execute
from magnus.secrets import BaseSecrets
from magnus.testing import SecretsContract
from magnus.testing.pipelines import task, write_pipeline
from magnus.testing.secrets import SecretsFactory
from magnus_secrets.dotenv import DotEnvSecrets
from magnus_secrets.environment import EnvironmentSecrets


class TestDotEnv(SecretsContract):
    @pytest.fixture
    def make_secrets(self, tmp_path: Path) -> SecretsFactory:
        def make(secrets: Dict[str, str]) -> BaseSecrets:
            lines = [f'{key}="{value}"' for key, value in secrets.items()]
            (tmp_path / ".env").write_text("# comment\n" + "\n".join(lines) + "\n")
            return DotEnvSecrets(location=str(tmp_path / ".env"))

        return make


class TestEnvironment(SecretsContract):
    @pytest.fixture
    def make_secrets(self, monkeypatch: pytest.MonkeyPatch) -> SecretsFactory:
        def make(secrets: Dict[str, str]) -> BaseSecrets:
            for key, value in secrets.items():
                monkeypatch.setenv(f"APP_{key}_SECRET", value)
            return EnvironmentSecrets(prefix="APP_", suffix="_SECRET")

        return make


def test_dotenv_syntax(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        textwrap.dedent(
            """\
            # a comment
            PLAIN=value
            export EXPORTED="quoted value"
            SINGLE='single # not a comment'
            SPACED = spaced   # trailing comment
            """
        )
    )
    backend = DotEnvSecrets(location=str(tmp_path / ".env"))
    assert backend.get("PLAIN") == "value"
    assert backend.get("EXPORTED") == "quoted value"
    assert backend.get("SINGLE") == "single # not a comment"
    assert backend.get("SPACED") == "spaced"


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"secret 'X' not found.*does not exist"):
        DotEnvSecrets(location=str(tmp_path / "nope.env")).get("X")


SECRET = "tr0ub4dor-and-3-horses"

STEPS = """
import magnus


def leaky() -> dict:
    secret = magnus.get_secret("TOKEN")
    print("the token is", secret)
    magnus.track_this(token=secret)
    magnus.set_parameter(copied=secret)
    return {"returned": "prefix-" + secret}


def fails() -> None:
    secret = magnus.get_secret("TOKEN")
    raise RuntimeError(f"could not log in with {secret}")


def missing() -> None:
    magnus.get_secret("NOT_THERE")
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret_steps.py").write_text(textwrap.dedent(STEPS))
    (tmp_path / ".env").write_text(f"TOKEN={SECRET}\n")
    shell = '. ./.env; echo "shell sees $TOKEN"; export MAGNUS_PRM_from_shell="$TOKEN"'
    steps = {
        "leaky": task("secret_steps.leaky", "shell"),
        "shell": task(shell, "fails", command_type="shell"),
        "fails": task("secret_steps.fails", on_failure="missing"),
        "missing": task("secret_steps.missing"),
    }
    write_pipeline(tmp_path, steps, "leaky")
    yield tmp_path


def test_no_secret_reaches_any_artifact(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = {
        "run_log_store": {"type": "file-system"},
        "secrets": {"type": "dotenv", "config": {"location": ".env"}},
        "catalog": {"type": "file-system"} if _catalog_installed() else {"type": "do-nothing"},
    }
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    run_log = execute("pipeline.yaml", "config.yaml", run_id="secret-run")

    assert run_log.steps["leaky"].status == "SUCCESS"
    assert run_log.parameters["from_shell"] == "***"
    assert run_log.parameters["copied"] == "***" and run_log.parameters["returned"] == "prefix-***"
    assert run_log.steps["fails"].message == "RuntimeError: could not log in with ***"
    assert "secret 'NOT_THERE' not found" in run_log.steps["missing"].message

    console = capsys.readouterr()
    assert SECRET not in console.out + console.err
    assert "the token is ***" in console.out

    written = [path for path in project.rglob("*") if path.is_file() and path.name != ".env"]
    assert any(path.suffix == ".json" for path in written)
    for path in written:
        assert SECRET not in path.read_text(errors="replace"), f"the secret leaked into {path}"


def test_env_secrets_are_masked_from_the_start(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_TOKEN", SECRET)
    config = {
        "run_log_store": {"type": "file-system"},
        "secrets": {"type": "env-secrets-manager", "config": {"prefix": "APP_"}},
    }
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    steps = {
        "shell": {"type": "task", "command_type": "shell", "command": 'echo "$APP_TOKEN"', "next": "success"},
        "success": {"type": "success"},
        "fail": {"type": "fail"},
    }
    (project / "pipeline.yaml").write_text(yaml.safe_dump({"dag": {"start_at": "shell", "steps": steps}}))
    execute("pipeline.yaml", "config.yaml", run_id="env-run")
    stored = (project / ".run_log_store" / "env-run.json").read_text()
    assert SECRET not in stored
    assert json.loads(stored)["run_config"]["secrets_handler"] == {
        "service_name": "env-secrets-manager",
        "service_type": "secrets",
        "prefix": "APP_",
        "suffix": "",
    }
    assert os.environ["APP_TOKEN"] == SECRET


def _catalog_installed() -> bool:
    from magnus.plugins import is_installed

    return is_installed("catalog", "file-system")


PIECES = """
import sys
import magnus


def pieces() -> None:
    secret = magnus.get_secret("TOKEN")
    print("python:", secret[:5], end="")
    sys.stdout.flush()
    print(secret[5:])
"""


def test_a_secret_printed_in_pieces_is_masked_in_the_console_and_the_execution_logs(
    project: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Two writes with a flush between: the first piece was written out before the second came."""
    (project / "piece_steps.py").write_text(textwrap.dedent(PIECES))
    shell = '. ./.env; printf "shell: %s" "$(echo "$TOKEN" | cut -c1-5)"; sleep 0.2; echo "$TOKEN" | cut -c6-'
    steps = {"python": task("piece_steps.pieces", "shell"), "shell": task(shell, command_type="shell")}
    write_pipeline(project, steps, "python")
    config = {
        "run_log_store": {"type": "file-system"},
        "secrets": {"type": "dotenv", "config": {"location": ".env"}},
        "catalog": {"type": "file-system"} if _catalog_installed() else {"type": "do-nothing"},
    }
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    run_log = execute("pipeline.yaml", "config.yaml", run_id="pieces")
    assert run_log is not None and run_log.status == "SUCCESS"

    console = capfd.readouterr()
    assert "python: ***\n" in console.out and "shell: ***\n" in console.out
    logs = list(project.glob(".catalog/pieces/*.execution.log"))
    assert len(logs) == (2 if _catalog_installed() else 0)
    for text in [console.out + console.err, *(path.read_text() for path in logs)]:
        assert SECRET[:5] not in text and SECRET[5:] not in text
