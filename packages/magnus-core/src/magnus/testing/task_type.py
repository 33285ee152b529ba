"""The promises of :class:`~magnus.tasks.base.BaseTaskType`, as tests.

A task's command is run here as the step runner runs it: the run's parameters are given to
``execute_command`` and are in the environment (``MAGNUS_PRM_<name>``) meanwhile, what it
prints is captured from ``sys.stdout``/``sys.stderr``, and the parameters it sets are what it
returns merged with what it exported to the environment (how a command run in another process
passes them back).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Dict, NamedTuple

import pytest
from pydantic import ValidationError

from magnus import defaults
from magnus.capture import captured_output
from magnus.runtime.environment import parameters_in_environment
from magnus.tasks.base import BaseTaskType
from magnus.testing._entry_points import check_registered_as


class Ran(NamedTuple):
    """What a command did: the parameters it set (new or changed) and what it printed."""

    parameters: Dict[str, Any]
    printed: str


def run_task(task: BaseTaskType, parameters: Dict[str, Any], map_variable: defaults.TypeMapVariable = None) -> Ran:
    """Run ``task``'s command once, as :class:`~magnus.runtime.step.StepRunner` does.

    Raises:
        Exception: whatever the command raised (the step runner records it as a failed attempt).
    """
    output = io.StringIO()
    with captured_output(sink=output):
        with parameters_in_environment(parameters, map_variable) as changed:
            returned = task.execute_command(dict(parameters), map_variable)
    assert isinstance(returned, dict), f"execute_command returned {type(returned).__name__}, not a dict"
    return Ran({**changed.parameters, **returned}, output.getvalue())


class TaskTypeContract:
    """Subclass and implement :meth:`make_task` and :meth:`make_failing_task`.

    Each test runs in ``tmp_path`` (the working folder), where the tasks' files go.

    What is promised:

    - the command receives the run's parameters, a map position's values among them;
    - what it sets comes back, returned or exported as ``MAGNUS_PRM_<name>``;
    - what it prints goes to ``sys.stdout`` (or ``sys.stderr``), where the step runner captures it;
    - an empty command and unknown fields are refused when the task is built;
    - a failing command raises;
    - ``check()`` passes a command that can run, without running it (it prints nothing);
    - ``task_type`` is its entry-point name in the ``tasks`` namespace, once installed.
    """

    def make_task(self, tmp_path: Path) -> BaseTaskType:
        """A task whose command prints something and sets parameter ``answer`` to ``question * 7``.

        ``question`` is an integer parameter (6, for the answer 42).
        """
        raise NotImplementedError("implement make_task: a command setting answer = question * 7, printing")

    def make_failing_task(self, tmp_path: Path) -> BaseTaskType:
        """A task whose command fails (raises, exits non-zero)."""
        raise NotImplementedError("implement make_failing_task: a command that fails")

    @pytest.fixture(autouse=True)
    def in_tmp_path(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        monkeypatch.chdir(tmp_path)
        return tmp_path

    @pytest.fixture
    def task(self, tmp_path: Path) -> BaseTaskType:
        return self.make_task(tmp_path)

    @pytest.mark.parametrize(("question", "answer"), [(6, 42), (3, 21)])
    def test_parameters_go_in_and_come_back(self, task: BaseTaskType, question: int, answer: int) -> None:
        ran = run_task(task, {"question": question, "unrelated": "kept"})
        assert ran.parameters.get("answer") == answer, f"set: {ran.parameters}"
        assert "unrelated" not in ran.parameters or ran.parameters["unrelated"] == "kept"

    def test_a_map_position_is_a_parameter(self, task: BaseTaskType) -> None:
        ran = run_task(task, {}, map_variable={"question": 6})
        assert ran.parameters.get("answer") == 42, f"set: {ran.parameters}"

    def test_it_prints_to_stdout(self, task: BaseTaskType) -> None:
        assert run_task(task, {"question": 6}).printed.strip()

    def test_parameters_used_are_parameters_given(self, task: BaseTaskType) -> None:
        given = {"question": 6, "unrelated": "kept"}
        used = task.parameters_used(given, None)
        assert used.items() <= given.items()
        assert "question" in used, "the attempt records the parameters the command read"

    def test_a_command_that_can_run_passes_its_check_without_running(
        self, task: BaseTaskType, capfd: pytest.CaptureFixture[str]
    ) -> None:
        task.check()
        assert capfd.readouterr().out == "", "check() ran the command"

    def test_a_failing_command_raises(self, tmp_path: Path) -> None:
        with pytest.raises(Exception):  # noqa: B017 - any exception fails the attempt
            run_task(self.make_failing_task(tmp_path), {"question": 6})

    @pytest.mark.parametrize("command", ["", "   "])
    def test_an_empty_command_is_refused(self, task: BaseTaskType, command: str) -> None:
        with pytest.raises(ValidationError):
            type(task).model_validate({**task.model_dump(), "command": command})

    def test_unknown_fields_are_refused(self, task: BaseTaskType) -> None:
        with pytest.raises(ValidationError, match="surely_not_a_field"):
            type(task).model_validate({**task.model_dump(), "surely_not_a_field": 1})

    def test_task_type_is_its_entry_point_name(self, task: BaseTaskType) -> None:
        check_registered_as("tasks", task.task_type, type(task))
