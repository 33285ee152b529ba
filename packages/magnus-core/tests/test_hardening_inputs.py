"""Small inputs that cost a lot, and inputs that used to end in an internal error (issue 18, classes 6 and 7).

Each input is refused before anything runs (exit 2, one ``Error:`` line naming the file) or runs;
none ends in ``Error: internal error`` or a traceback. The CLI cases run ``python -m magnus`` in a
temporary project folder, as a user would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml

from magnus import yaml_file
from magnus.errors import ParameterError
from magnus.parameters import file_variable, load_parameters_file
from magnus.runtime import environment
from magnus.runtime.environment import LONGEST_VARIABLE, ParameterVariables, parameters_in_environment
from magnus.testing.pipelines import TERMINALS, error_line, run_magnus

STUB_PIPELINE = {"dag": {"start_at": "a", "steps": {"a": {"type": "stub", "next": "success"}, **TERMINALS}}}


def magnus(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_magnus(*args, cwd=project, env={"MAGNUS_DEBUG": ""})


def refused(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """The one ``Error:`` line of a command refused with exit 2, checked to hold each fragment."""
    return error_line(result, 2, *fragments)


def write_yaml(path: Path, content: Any) -> Path:
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_yaml(tmp_path / "pipeline.yaml", STUB_PIPELINE)
    return tmp_path


def shell_pipeline(*commands: str) -> Dict[str, Any]:
    names = [f"s{number}" for number in range(len(commands))]
    steps = {
        name: {"type": "task", "command_type": "shell", "command": command, "next": after}
        for name, command, after in zip(names, commands, [*names[1:], "success"], strict=True)
    }
    return {"dag": {"start_at": names[0], "steps": {**steps, **TERMINALS}}}


# ---- YAML: encodings, aliases, types, sizes -------------------------------------------------------------
@pytest.mark.parametrize("option", ["-f", "-p", "-c"])
def test_a_file_that_is_not_utf8_is_refused_naming_the_byte(project: Path, option: str) -> None:
    (project / "latin1.yaml").write_bytes("a: 1\nname: café\n".encode("latin-1"))
    args = {"-f": ["-f", "latin1.yaml"], "-p": ["-p", "latin1.yaml"], "-c": ["-c", "latin1.yaml"]}[option]
    refused(magnus(project, "execute", *args), "latin1.yaml: not UTF-8 text at byte 14 (line 2)")


def test_an_alias_bomb_of_under_1_kb_is_refused_at_once(project: Path) -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 9)]
    bomb = "\n".join(lines) + "\n"
    assert len(bomb) < 1024
    (project / "bomb.yaml").write_text(bomb)
    started = time.monotonic()
    refused(magnus(project, "execute", "-p", "bomb.yaml"), "bomb.yaml: aliases repeat more than 1,000,000 values")
    assert time.monotonic() - started < 30


def test_aliases_within_the_budget_still_work() -> None:
    text = "base: &base {lr: 0.1, layers: [1, 2]}\ntrain: *base\nmerged: {<<: *base, lr: 0.2}\n"
    loaded = yaml_file.parse_yaml(text, "p.yaml", ParameterError)
    assert loaded["train"] == {"lr": 0.1, "layers": [1, 2]}
    assert loaded["merged"] == {"lr": 0.2, "layers": [1, 2]}


@pytest.mark.parametrize("option", ["-f", "-p"])
def test_a_recursive_alias_is_refused_naming_its_line(project: Path, option: str) -> None:
    (project / "loop.yaml").write_text("x: 1\nloop: &loop [1, *loop]\n")
    refused(magnus(project, "execute", option, "loop.yaml"), "loop.yaml: line 2: an alias refers to the value it is in")


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    depth = yaml_file.DEPTH_LIMIT + 5
    with pytest.raises(ParameterError, match="nested deeper than"):
        yaml_file.parse_yaml("x: " + "[" * depth + "]" * depth, "p.yaml", ParameterError)
    with pytest.raises(ParameterError, match="through an alias"):
        half = yaml_file.DEPTH_LIMIT // 2 + 5
        yaml_file.parse_yaml(
            f"a: &a {'[' * half}{']' * half}\nb: {'[' * half}*a{']' * half}\n", "p.yaml", ParameterError
        )


def test_dates_and_timestamps_are_kept_as_the_text_written(project: Path) -> None:
    (project / "params.yaml").write_text("day: 2024-01-31\nwhen: 2001-12-14t21:59:43.10-05:00\nn: 1\n")
    assert load_parameters_file(str(project / "params.yaml")) == {
        "day": "2024-01-31",
        "when": "2001-12-14t21:59:43.10-05:00",
        "n": 1,
    }
    write_yaml(project / "pipeline.yaml", shell_pipeline('test "$MAGNUS_PRM_day" = \'"2024-01-31"\''))
    result = magnus(project, "execute", "-p", "params.yaml")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("n: 1\nblob: !!binary aGVsbG8=\n", ("line 2: blob: a !!binary value is not JSON data",)),
        ("n: 1\nnested:\n  tags: !!set {a, b}\n", ("line 3: nested: a !!set is not JSON data",)),
    ],
)
def test_yaml_types_json_has_not_are_refused_naming_the_parameter(
    project: Path, text: str, fragments: tuple[str, ...]
) -> None:
    (project / "params.yaml").write_text(text)
    refused(magnus(project, "execute", "-p", "params.yaml"), "params.yaml: ", *fragments)


def test_keys_are_text_as_in_json() -> None:
    assert yaml_file.parse_yaml("1: a\n2.5: b\nnull: c\n", "p.yaml", ParameterError) == {
        "1": "a",
        "2.5": "b",
        "null": "c",
    }
    with pytest.raises(ParameterError, match="line 1, column 1: key '1' is written twice"):
        yaml_file.parse_yaml("1: a\n'1': b\n", "p.yaml", ParameterError)


def test_an_integer_too_long_for_python_is_a_clean_error(project: Path) -> None:
    (project / "params.yaml").write_text("n: " + "1" * 5000 + "\n")
    refused(magnus(project, "execute", "-p", "params.yaml"), "params.yaml: not valid YAML")


def test_files_over_the_size_limit_are_refused_before_they_are_read(project: Path) -> None:
    with (project / "huge.yaml").open("w") as file:
        file.truncate(yaml_file.DOCUMENT_LIMIT + 1)  # sparse: nothing written, nothing read
    refused(
        magnus(project, "execute", "-f", "huge.yaml"),
        "huge.yaml: pipeline file of 4,194,305 bytes is larger than the limit of 4 MiB",
    )
    with pytest.raises(ParameterError, match="larger than the limit of 64 MiB"):
        with (project / "params.yaml").open("w") as file:
            file.truncate(yaml_file.PARAMETERS_LIMIT + 1)
        load_parameters_file(str(project / "params.yaml"))


# ---- parameters too large for the environment of a process ---------------------------------------------
def test_a_200_kib_parameter_reaches_a_shell_step_through_a_file(project: Path) -> None:
    big = "x" * (200 * 1024)
    (project / "params.yaml").write_text(json.dumps({"big": big, "small": "s"}))
    write_yaml(
        project / "pipeline.yaml",
        shell_pipeline(
            # the value is in the file (as JSON), processes still start, the small one is where it was
            f'test -z "$MAGNUS_PRM_big" && test "$(wc -c < "$MAGNUS_FILE_PRM_big")" -eq {len(big) + 2} '
            f'&& test "$(tr -d x < "$MAGNUS_FILE_PRM_big")" = \'""\' '
            '&& test "$MAGNUS_PRM_small" = \'"s"\' && export MAGNUS_PRM_seen=yes',
            'test "$MAGNUS_PRM_seen" = \'"yes"\'',
        ),
    )
    result = magnus(project, "execute", "-p", "params.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_shell_step_exporting_a_value_too_large_to_read_back_fails_cleanly(project: Path) -> None:
    write_yaml(
        project / "pipeline.yaml", shell_pipeline('export MAGNUS_PRM_huge="$(head -c 200000 /dev/zero | tr "\\0" x)"')
    )
    result = magnus(project, "execute")
    assert result.returncode == 1
    assert "could not be read back" in [line for line in result.stderr.splitlines() if line.startswith("Error:")][-1]
    assert "internal error" not in result.stderr


def test_the_variables_of_magnus_stay_within_the_budget_of_the_environment() -> None:
    many = {f"p{n}": "y" * 100_000 for n in range(20)}  # each fits, together 2 MB: over ARG_MAX
    variables = ParameterVariables().exported({**many, "tiny": 1}, {"i": "z" * LONGEST_VARIABLE})
    assert sum(len(key) + len(value) + 2 for key, value in variables.items()) <= 1024 * 1024
    assert variables["MAGNUS_PRM_tiny"] == "1"
    candidates = [f"MAGNUS_PRM_{name}" for name in [*many, "tiny", "i"]] + ["MAGNUS_MAP_VARIABLE"]
    spilled = {key: Path(variables[file_variable(key)]) for key in candidates if file_variable(key) in variables}
    assert json.loads(spilled["MAGNUS_PRM_i"].read_text()) == "z" * LONGEST_VARIABLE
    for key in spilled:
        assert key not in variables


def test_each_value_is_encoded_and_written_once_while_it_is_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    """A map's list reaches every item's step: encoding (or writing) it per item made a run O(N²)."""
    encoded: List[Any] = []
    monkeypatch.setattr(environment, "encode_value", lambda value: encoded.append(value) or json.dumps(value))
    variables, items, big = ParameterVariables(), list(range(1000)), "b" * 200_000
    first = variables.exported({"items": items, "big": big}, {"item": 0})
    second = variables.exported({"items": items, "big": big}, {"item": 1})
    assert [value for value in encoded if value is items or value is big] == [items, big]
    path = first["MAGNUS_FILE_PRM_big"]
    assert second["MAGNUS_FILE_PRM_big"] == path  # the same file, written once
    assert Path(path).stat().st_mode & 0o222 == 0, "read-only: a step is not to write there"
    Path(path).chmod(0o644)
    Path(path).write_text('"changed by a step"')  # a step that wrote to the file gets the value again
    third = variables.exported({"items": items, "big": big}, {"item": 2})
    assert json.loads(Path(third["MAGNUS_FILE_PRM_big"]).read_text()) == big
    changed = variables.exported({"items": [*items, 1000], "big": big}, None)  # a new value: encoded anew
    assert json.loads(changed["MAGNUS_PRM_items"])[-1] == 1000


def test_the_files_of_large_values_are_removed_when_the_block_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAGNUS_PRM_big", "stale")
    with parameters_in_environment({"big": "b" * 200_000}) as _:
        path = os.environ["MAGNUS_FILE_PRM_big"]
        assert "MAGNUS_PRM_big" not in os.environ
        assert json.loads(Path(path).read_text()) == "b" * 200_000
        subprocess.run(["true"], check=True)  # processes still start
    assert not Path(path).exists()
    assert os.environ["MAGNUS_PRM_big"] == "stale"
    assert "MAGNUS_FILE_PRM_big" not in os.environ


def test_a_runs_files_of_large_values_are_removed_when_its_process_ends(tmp_path: Path) -> None:
    script = (
        "from magnus.runtime.environment import ParameterVariables\n"
        "variables = ParameterVariables()\n"
        "print(variables.exported({'big': 'b' * 200_000}, None)['MAGNUS_FILE_PRM_big'])\n"
    )
    printed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert printed.strip() and not Path(printed.strip()).exists()


# ---- pipelines: dag definitions including themselves, step names that are numbers -------------------------
def test_a_dag_definition_that_includes_itself_is_refused(project: Path) -> None:
    def including(file: str) -> Dict[str, Any]:
        inner = {"type": "dag", "dag_definition": file, "next": "success"}
        return {"dag": {"start_at": "inner", "steps": {"inner": inner, **TERMINALS}}}

    write_yaml(project / "self.yaml", including("self.yaml"))
    refused(magnus(project, "execute", "-f", "self.yaml"), "'self.yaml' includes itself: self.yaml -> self.yaml")
    (project / "sub").mkdir()
    write_yaml(project / "sub" / "a.yaml", including("b.yaml"))  # found next to the file naming it
    write_yaml(project / "sub" / "b.yaml", including("a.yaml"))
    write_yaml(project / "pipeline.yaml", including("sub/a.yaml"))
    refused(
        magnus(project, "execute"),
        "b.yaml: dag.steps.inner.dag_definition: 'a.yaml' includes itself: sub/a.yaml -> sub/b.yaml -> sub/a.yaml",
    )


def test_a_dag_definition_used_twice_side_by_side_is_no_cycle(project: Path) -> None:
    write_yaml(project / "inner.yaml", STUB_PIPELINE)
    steps = {
        "one": {"type": "dag", "dag_definition": "inner.yaml", "next": "two"},
        "two": {"type": "dag", "dag_definition": "inner.yaml", "next": "success"},
    }
    write_yaml(project / "pipeline.yaml", {"dag": {"start_at": "one", "steps": {**steps, **TERMINALS}}})
    result = magnus(project, "execute")
    assert result.returncode == 0, result.stderr


def test_a_step_named_by_a_number_is_a_step_like_any_other(project: Path) -> None:
    (project / "pipeline.yaml").write_text(
        "dag:\n  start_at: 1\n  steps:\n    1: {type: stub, next: '2'}\n    2: {type: stub, next: success}\n"
        "    success: {type: success}\n    fail: {type: fail}\n"
    )
    result = magnus(project, "execute")
    assert result.returncode == 0, result.stderr
    (project / "pipeline.yaml").write_text(
        "dag:\n  start_at: 1\n  steps:\n    1: {type: stub, next: success}\n    '1': {type: stub, next: success}\n"
        "    success: {type: success}\n    fail: {type: fail}\n"
    )
    refused(magnus(project, "execute"), "pipeline.yaml: not valid YAML: line 4, column 5: key '1' is written twice")


def test_a_dag_built_in_code_with_a_number_as_step_name(tmp_path: Path) -> None:
    from magnus.errors import PipelineDefinitionError
    from magnus.parsing import parse_pipeline

    steps: Dict[Any, Any] = {1: {"type": "stub", "next": "success"}, **TERMINALS}
    assert "1" in parse_pipeline({"dag": {"start_at": 1, "steps": steps}}, source="sdk", base_dir=tmp_path).steps
    twice = {**steps, "1": {"type": "stub", "next": "success"}}
    with pytest.raises(PipelineDefinitionError, match="step '1' is named twice"):
        parse_pipeline({"dag": {"start_at": 1, "steps": twice}}, source="sdk", base_dir=tmp_path)
