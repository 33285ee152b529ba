"""Edges of the round-three fixes: deaths told from failures, runs ended whatever stops their start,
and what a service's library says shown without its credentials."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import ClassVar

import pytest

from magnus import defaults
from magnus.catalog import DoNothingCatalog
from magnus.datastore.file_system import FileSystemRunLogStore
from magnus.entrypoints import execute
from magnus.errors import ServiceError
from magnus.redaction import Redactor
from magnus.service import BaseService
from magnus.service_failures import using
from magnus.testing.pipelines import task, write_pipeline

STEPS = '''
from pathlib import Path


def fails_as_if_dead() -> None:
    """A task's own failure whose message reads like a process death."""
    counter = Path("runs.txt")
    counter.write_text(str(int(counter.read_text()) + 1 if counter.exists() else 1))
    raise RuntimeError("its process exited with code 0, before recording the step")
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "review_steps.py").write_text(textwrap.dedent(STEPS))
    (tmp_path / "config.yaml").write_text("run_log_store:\n  type: file-system\n")
    return tmp_path


def test_a_task_failing_with_the_words_of_a_death_is_not_relaunched(project: Path) -> None:
    """Only magnus's record of a death relaunches a step, never a task's message: 3 attempts, not 9."""
    pipeline = write_pipeline(project, {"a": task("review_steps.fails_as_if_dead", max_attempts=3)}, "a")
    run_log = execute(pipeline, "config.yaml", run_id="words")
    assert run_log is not None and run_log.status == defaults.FAIL
    assert (project / "runs.txt").read_text() == "3"
    assert len(run_log.steps["a"].attempts) == 3


@pytest.mark.parametrize("stop", [KeyboardInterrupt, OSError])
def test_a_run_stopped_while_claiming_its_catalog_ends_fail(
    project: Path, monkeypatch: pytest.MonkeyPatch, stop: type
) -> None:
    def claim(self: DoNothingCatalog, run_id: str) -> None:
        raise stop("stopped")

    monkeypatch.setattr(DoNothingCatalog, "claim", claim)
    (project / "claims.yaml").write_text("run_log_store:\n  type: file-system\ncatalog:\n  type: do-nothing\n")
    pipeline = write_pipeline(project, {"a": {"type": "stub", "next": "success"}}, "a")
    with pytest.raises(stop):
        execute(pipeline, "claims.yaml", run_id="stopped")
    run_log = FileSystemRunLogStore(log_folder=".run_log_store").get_run_log_by_id("stopped")
    assert run_log.status == defaults.FAIL, "a run log left PROCESSING would look like a run going on"


class _Bucket(BaseService):
    service_name: ClassVar[str] = "bucket"
    service_type: ClassVar[str] = "catalog"

    location: str = "s3://bucket/catalog"
    endpoint: str = "https://admin:Pa55-word-9@minio.example:9000"


def test_what_a_library_says_is_shown_without_credentials() -> None:
    redactor = Redactor()
    redactor.add(["token-abc-123456"])
    said = (
        'Could not connect to the endpoint URL: "https://admin:Pa55-word-9@minio.example:9000/bucket", '
        "via https://other:Another-Pass-7@proxy:3128 with token-abc-123456"
    )
    with pytest.raises(ServiceError) as raised:
        with using(_Bucket(), redactor):
            raise ConnectionError(said)
    message = str(raised.value)
    assert message.startswith("catalog 'bucket' at s3://bucket/catalog: it cannot be reached (")
    for secret in ("Pa55-word-9", "Another-Pass-7", "token-abc-123456"):
        assert secret not in message


def test_a_bug_raised_while_handling_a_connection_error_stays_a_bug() -> None:
    """A context hidden with ``from None`` is not taken for the cause."""
    with pytest.raises(KeyError):
        with using(_Bucket()):
            try:
                raise ConnectionError("retrying")
            except ConnectionError:
                raise KeyError("a bug") from None
