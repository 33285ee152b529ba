"""Core's task types against :class:`magnus.testing.TaskTypeContract`."""

from __future__ import annotations

from pathlib import Path

from magnus.tasks.base import BaseTaskType
from magnus.tasks.python import PythonTaskType
from magnus.tasks.shell import ShellTaskType
from magnus.testing import TaskTypeContract

ANSWERS = """
def answer(question: int) -> dict:
    print(f"thinking about {question}")
    return {"answer": question * 7}


def fail(question: int) -> None:
    raise ValueError("no answer")
"""


class TestPythonTaskType(TaskTypeContract):
    def make_task(self, tmp_path: Path) -> BaseTaskType:
        (tmp_path / "contract_answers.py").write_text(ANSWERS)
        return PythonTaskType(command="contract_answers.answer")

    def make_failing_task(self, tmp_path: Path) -> BaseTaskType:
        (tmp_path / "contract_answers.py").write_text(ANSWERS)
        return PythonTaskType(command="contract_answers.fail")


class TestShellTaskType(TaskTypeContract):
    def make_task(self, tmp_path: Path) -> BaseTaskType:
        return ShellTaskType(
            command='echo "thinking about $MAGNUS_PRM_question"; export MAGNUS_PRM_answer=$((MAGNUS_PRM_question * 7))'
        )

    def make_failing_task(self, tmp_path: Path) -> BaseTaskType:
        return ShellTaskType(command="echo failing; exit 3")
