"""Parameters that JSON, the environment or python's recursion limit cannot hold (issue 31, classes 3, 4 and 20),
and a large parameter copied into every attempt of every shell step (class 18).

Every way a value enters a run is covered: the parameters file, ``MAGNUS_PRM_`` variables, what a
python function returns (a dict or a pydantic model), ``magnus.set_parameter`` and what a shell
command exports. Input read before the run is refused in one ``Error:`` line with exit 2 before any
step runs; what a step sets fails that step, in one line naming the step and the parameter (exit 1).
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Dict, Optional

import pytest
import yaml

from magnus import interaction, yaml_file
from magnus.errors import ParameterError
from magnus.json_data import DEPTH_LIMIT, json_data_problem
from magnus.parameters import file_variable, parameters_from_environment, returned_parameters
from magnus.tasks.shell import ShellTaskType
from magnus.testing.pipelines import error_line, map_of, run_magnus, task, write_pipeline

STEPS = """
from pathlib import Path

from pydantic import BaseModel

import magnus


class Scores(BaseModel):
    best: float
    all: list = []


def mark() -> None:
    Path("ran").write_text("")


def returns_nan_in_a_dict() -> dict:
    return {"ok": 1, "score": float("nan")}


def returns_inf_in_a_model() -> Scores:
    return Scores(best=1.0, all=[float("inf")])


def sets_nan() -> None:
    magnus.set_parameter(score=float("-inf"))


def returns_deep(depth: int) -> dict:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return {"deep": value}


def returns_a_name_with_equals() -> dict:
    return {"a=b": 1}


def reads(big: list) -> None:
    print(len(big))


def returns_huge() -> dict:
    return {"huge": "y" * (20 * 1024 * 1024)}


def reads_huge(huge: str) -> None:
    print(len(huge))
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "parameter_steps.py").write_text(textwrap.dedent(STEPS))
    (tmp_path / "config.yaml").write_text("run_log_store:\n  type: file-system\n")
    return tmp_path


def magnus(project: Path, *args: str, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess[str]:
    return run_magnus(*args, cwd=project, env={"MAGNUS_DEBUG": "", **(env or {})}, isolated=True)


def refused_before_any_step(project: Path, result: subprocess.CompletedProcess[str]) -> str:
    line = error_line(result, 2)
    assert "Traceback" not in result.stderr, result.stderr
    assert not (project / "ran").exists(), "a step ran"
    assert not (project / ".run_log_store").exists(), "a run log was written"
    return line


def run_marking(project: Path, *args: str, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess[str]:
    pipeline = write_pipeline(project, {"first": task("parameter_steps.mark")}, "first")
    return magnus(project, "execute", "-f", pipeline, "-c", "config.yaml", *args, env=env)


def run_step(project: Path, step: Dict[str, object], *args: str) -> subprocess.CompletedProcess[str]:
    pipeline = write_pipeline(project, {"step": step}, "step")
    return magnus(project, "execute", "-f", pipeline, "-c", "config.yaml", "--run-id", "r", *args)


def deep_list(depth: int) -> str:
    """JSON text of lists nested ``depth`` levels."""
    return "[" * depth + "]" * depth


# ---- class 3: NaN and infinities ----------------------------------------------------------------------
@pytest.mark.parametrize("written", [".nan", ".inf", "-.Inf"])
def test_a_parameters_file_with_nan_or_infinity_is_refused_naming_the_line(project: Path, written: str) -> None:
    (project / "params.yaml").write_text(f"ok: 1\nscore: {written}\n")
    line = refused_before_any_step(project, run_marking(project, "-p", "params.yaml"))
    assert line == (
        f"Error: params.yaml: line 2: score: {written} is not JSON data (JSON has no NaN or infinity): "
        "use null or a string"
    )


@pytest.mark.parametrize(("raw", "shown"), [("NaN", "NaN"), ("-Infinity", "-Infinity"), ("[1, 1e999]", "Infinity")])
def test_a_variable_with_nan_or_infinity_is_refused_naming_it(project: Path, raw: str, shown: str) -> None:
    line = refused_before_any_step(project, run_marking(project, env={"MAGNUS_PRM_score": raw}))
    assert line.startswith(f"Error: MAGNUS_PRM_score: parameter 'score': {shown} is not JSON data"), line


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("returns_nan_in_a_dict", "parameter_steps.returns_nan_in_a_dict returned parameter 'score': NaN"),
        ("returns_inf_in_a_model", "parameter_steps.returns_inf_in_a_model returned parameter 'all': Infinity"),
        ("sets_nan", "set_parameter: parameter 'score': -Infinity"),
    ],
)
def test_a_python_step_setting_nan_or_infinity_fails_naming_the_step_and_parameter(
    project: Path, command: str, expected: str
) -> None:
    line = error_line(run_step(project, task(f"parameter_steps.{command}")), 1)
    failed = "Error: run 'r' ended FAIL at step 'step': ParameterError: "
    assert line.startswith(f"{failed}{expected} is not JSON data"), line
    recorded = json.loads((project / ".run_log_store" / "r.json").read_text())
    assert "score" not in recorded["parameters"] and "all" not in recorded["parameters"]


def test_a_shell_step_exporting_nan_fails_naming_the_step_and_parameter(project: Path) -> None:
    line = error_line(run_step(project, task("export MAGNUS_PRM_score=NaN", command_type="shell")), 1)
    assert line.startswith(
        "Error: run 'r' ended FAIL at step 'step': ParameterError: exported MAGNUS_PRM_score: parameter 'score': NaN"
    ), line


def test_set_parameter_outside_a_step_refuses_nan_and_sets_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAGNUS_PRM_fine", raising=False)
    with pytest.raises(ParameterError, match="set_parameter: parameter 'score': NaN is not JSON data"):
        interaction.set_parameter(fine=1, score=float("nan"))
    assert "MAGNUS_PRM_fine" not in __import__("os").environ


# ---- class 4: names that cannot be environment variables, and names magnus uses itself ----------------
@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("a=b", "'a=b': a name cannot contain '='"),
        ("", "'': a name cannot be empty"),
        ("nul\0here", "'nul\\x00here': a name cannot contain NUL"),
        ("n" * 256, f"'{'n' * 256}': a name is at most 255 bytes"),
    ],
)
def test_a_parameters_file_with_a_name_no_variable_can_have_is_refused(project: Path, name: str, problem: str) -> None:
    (project / "params.yaml").write_text(json.dumps({"fine": 1, name: 2}))
    line = refused_before_any_step(project, run_marking(project, "-p", "params.yaml"))
    assert line.startswith(f"Error: params.yaml: parameter {problem}"), line


def test_a_variable_named_beyond_the_limit_is_refused_naming_it() -> None:
    variable = "MAGNUS_PRM_" + "N" * 300
    with pytest.raises(ParameterError, match=f"^{variable}: parameter '{'n' * 300}': a name is at most 255 bytes$"):
        parameters_from_environment({variable: "1"})


def test_a_step_returning_a_name_no_variable_can_have_fails_naming_it(project: Path) -> None:
    line = error_line(run_step(project, task("parameter_steps.returns_a_name_with_equals")), 1)
    assert line == (
        "Error: run 'r' ended FAIL at step 'step': ParameterError: parameter_steps.returns_a_name_with_equals "
        "returned parameter 'a=b': a name cannot contain '=' (it is in the environment variable MAGNUS_PRM_<name>)"
    )


def test_a_map_whose_iterate_as_cannot_name_a_variable_is_refused(project: Path) -> None:
    pipeline = write_pipeline(project, {"each": map_of("parameter_steps.mark", iterate_as="a=b")}, "each")
    (project / "params.yaml").write_text("items: [1, 2]\n")
    result = magnus(project, "execute", "-f", pipeline, "-c", "config.yaml", "-p", "params.yaml")
    line = refused_before_any_step(project, result)
    assert line.startswith("Error: pipeline.yaml: dag.steps.each.iterate_as: a name cannot contain '='"), line


def test_a_parameter_named_like_a_spill_variable_keeps_its_own_value(project: Path) -> None:
    """``big_FILE`` is the user's: the file holding ``big`` is named by a variable no parameter can have."""
    big = "x" * (200 * 1024)
    (project / "params.yaml").write_text(json.dumps({"big": big, "big_FILE": "mine", "FILE_PRM_big": "also mine"}))
    check = (
        f'test "$MAGNUS_PRM_big_FILE" = \'"mine"\' && test "$MAGNUS_PRM_FILE_PRM_big" = \'"also mine"\' '
        f'&& test -z "$MAGNUS_PRM_big" && test "$(wc -c < "${file_variable("MAGNUS_PRM_big")}")" -eq {len(big) + 2}'
    )
    result = run_step(project, task(check, command_type="shell"), "-p", "params.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    recorded = json.loads((project / ".run_log_store" / "r.json").read_text())["parameters"]
    assert (recorded["big_FILE"], recorded["FILE_PRM_big"]) == ("mine", "also mine")


def test_file_variables_are_outside_the_prefix_of_parameters() -> None:
    assert file_variable("MAGNUS_PRM_x") == "MAGNUS_FILE_PRM_x"
    assert file_variable("MAGNUS_MAP_VARIABLE") == "MAGNUS_FILE_MAP_VARIABLE"
    assert not file_variable("MAGNUS_PRM_x").startswith("MAGNUS_PRM_")


# ---- class 20: values nested too deep -----------------------------------------------------------------
def test_a_variable_nested_5000_deep_is_refused_naming_it(project: Path) -> None:
    line = refused_before_any_step(project, run_marking(project, env={"MAGNUS_PRM_deep": deep_list(5000)}))
    assert line == "Error: MAGNUS_PRM_deep: parameter 'deep': nested deeper than 100 levels"


def test_a_variable_nested_to_the_limit_is_a_parameter(project: Path) -> None:
    result = run_marking(project, env={"MAGNUS_PRM_deep": deep_list(DEPTH_LIMIT)})
    assert result.returncode == 0, result.stderr
    assert (project / "ran").exists()


@pytest.mark.parametrize("depth", [DEPTH_LIMIT + 1, 300])
def test_a_python_step_returning_a_value_nested_too_deep_fails_naming_it(project: Path, depth: int) -> None:
    (project / "params.yaml").write_text(f"depth: {depth}\n")
    line = error_line(run_step(project, task("parameter_steps.returns_deep"), "-p", "params.yaml"), 1)
    assert line == (
        "Error: run 'r' ended FAIL at step 'step': ParameterError: parameter_steps.returns_deep "
        "returned parameter 'deep': nested deeper than 100 levels"
    )


def test_a_shell_step_exporting_a_value_nested_too_deep_fails_naming_it(project: Path) -> None:
    line = error_line(run_step(project, task(f"export MAGNUS_PRM_deep='{deep_list(5000)}'", command_type="shell")), 1)
    assert line == (
        "Error: run 'r' ended FAIL at step 'step': ParameterError: exported MAGNUS_PRM_deep: "
        "parameter 'deep': nested deeper than 100 levels"
    )


def test_values_are_checked_without_recursion_and_at_the_same_limit_as_yaml() -> None:
    value: list = []
    for _ in range(100_000):  # far beyond python's recursion limit
        value = [value]
    assert json_data_problem(value) == "nested deeper than 100 levels"
    at_limit: dict = {}
    for _ in range(DEPTH_LIMIT - 1):
        at_limit = {"k": at_limit}
    assert json_data_problem(at_limit) == ""
    assert json_data_problem({"k": at_limit}) == "nested deeper than 100 levels"
    assert json_data_problem({"k": {"inner": (1, 2.5, None, True)}, 3: "a"}) == ""
    # The same documents pass or fail both: the YAML reader's levels and these are the same.
    for levels in (DEPTH_LIMIT - 1, DEPTH_LIMIT):
        text = "x: " + deep_list(levels)
        try:
            loaded = yaml_file.parse_yaml(text, "p.yaml", ParameterError)
        except ParameterError as exc:
            assert "nested deeper than 100 levels" in str(exc)
            assert json_data_problem(yaml.safe_load(text)) == "nested deeper than 100 levels"
        else:
            assert json_data_problem(loaded) == ""


def test_returned_values_keep_their_other_checks() -> None:
    with pytest.raises(ParameterError, match=r"returned parameter 'when': a value of type object is not JSON data"):
        returned_parameters({"when": object()}, "f")
    assert returned_parameters({"fine": [1.5, {"k": None}]}, "f") == {"fine": [1.5, {"k": None}]}


# ---- class 18: a run log growing with parameters times steps ------------------------------------------
def test_a_large_parameter_is_recorded_only_by_the_shell_steps_naming_it(project: Path) -> None:
    """A 6 MB parameter and four shell attempts: the run log holds it twice, not once per attempt."""
    big = "x" * (6 * 1024 * 1024)
    (project / "params.yaml").write_text(json.dumps({"big": big, "small": 1}))
    retried = 'test -e tried || { touch tried; exit 1; }; echo "$MAGNUS_PRM_small"'
    steps = {
        "names": task('test -s "$MAGNUS_FILE_PRM_big" && echo "${MAGNUS_PRM_small}"', "quiet", command_type="shell"),
        "quiet": task("echo one", "retried", command_type="shell"),
        "retried": task(retried, command_type="shell", max_attempts=2),
    }
    pipeline = write_pipeline(project, steps, "names")
    result = magnus(project, "execute", "-f", pipeline, "-c", "config.yaml", "--run-id", "r", "-p", "params.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    log_file = project / ".run_log_store" / "r.json"
    recorded = json.loads(log_file.read_text())
    attempts = {name: [attempt["parameters"] for attempt in recorded["steps"][name]["attempts"]] for name in steps}
    reference = attempts["names"][0]["big"]
    assert reference.startswith(f"<parameter of {len(big) + 2:,} bytes of JSON, sha256 "), reference
    expected = {"names": [{"big": reference, "small": 1}], "quiet": [{}], "retried": [{"small": 1}, {"small": 1}]}
    assert attempts == expected
    assert recorded["parameters"]["big"] == big
    assert log_file.stat().st_size < len(big) + 64 * 1024, "the parameter once, for the run"


@pytest.mark.slow
def test_a_run_log_and_memory_stay_proportional_to_the_parameters(project: Path) -> None:
    """A 6 MB parameter read by five steps and a 20 MB value returned and read: the run log holds at
    most 3 times their JSON, and no process of the run holds more than 10 times it and a constant."""
    from magnus.testing.pipelines import magnus_peak_memory

    big = ["x" * 100] * 60_000  # about 6 MB of JSON
    (project / "params.yaml").write_text(json.dumps({"big": big}))
    readers = [f"read{number}" for number in range(5)]
    steps = {
        name: task("parameter_steps.reads", after)
        for name, after in zip(readers, [*readers[1:], "returns"], strict=True)
    }
    steps["returns"] = task("parameter_steps.returns_huge", "reads_huge")
    steps["reads_huge"] = task("parameter_steps.reads_huge")
    pipeline = write_pipeline(project, steps, "read0")
    arguments = ["execute", "-f", pipeline, "-c", "config.yaml", "--run-id", "r", "-p", "params.yaml"]
    measured = magnus_peak_memory(*arguments, cwd=project)
    assert measured.returncode == 0, measured.stderr
    parameters_json = len(json.dumps(big)) + 20 * 1024 * 1024 + 2
    run_log = (project / ".run_log_store" / "r.json").stat().st_size
    assert run_log <= 3 * parameters_json, f"run log {run_log >> 20} MiB for {parameters_json >> 20} MiB of parameters"
    assert measured.peak_bytes <= 10 * parameters_json + 64 * 1024 * 1024, f"peak {measured.peak_bytes >> 20} MiB"


@pytest.mark.parametrize(
    ("command", "used"),
    [
        ("echo $MAGNUS_PRM_a ${MAGNUS_PRM_b}", {"a", "b"}),
        ('cat "$MAGNUS_FILE_PRM_a"', {"a"}),
        ("echo $MAGNUS_PRM_ab", {"ab"}),  # names ab, not a
        ("echo $MAGNUS_PRM_abc", set()),  # a variable that holds no parameter
        ("printenv MAGNUS_PRM_my-name", {"my-name"}),
        ("echo $XMAGNUS_PRM_a", set()),
        ("python script.py", set()),  # what a script reads is not known
        ('echo "$MAGNUS_MAP_VARIABLE"', {"item"}),
        ("echo $MAGNUS_PRM_item", {"item"}),
    ],
)
def test_a_shell_attempt_records_the_parameters_its_command_names(command: str, used: set) -> None:
    parameters = {"a": 1, "ab": 2, "b": [3], "my-name": 4}
    recorded = ShellTaskType(command=command).parameters_used(parameters, {"item": "i"})
    assert set(recorded) == used
    assert recorded.items() <= {**parameters, "item": "i"}.items()
