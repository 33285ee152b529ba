"""Malformed pipelines, configs and parameter files are refused before any step runs.

Each case runs the real CLI: one line on stderr naming the file, the place and the problem,
exit code 2, no traceback, and no run log written.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml
from click.testing import CliRunner

from magnus.cli import cli
from magnus.plugins import is_installed

GOOD_STEPS: Dict[str, Any] = {
    "first": {"type": "task", "command": "steps.first", "next": "success"},
    "success": {"type": "success"},
    "fail": {"type": "fail"},
}


def dag(**changes: Any) -> Dict[str, Any]:
    steps = {name: dict(step) for name, step in GOOD_STEPS.items()}
    for name, step in changes.pop("steps", {}).items():
        if step is None:
            steps.pop(name, None)
        else:
            steps[name] = step
    return {"dag": {"start_at": "first", "steps": steps, **changes}}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "steps.py").write_text("def first():\n    open('ran.flag', 'w').close()\n")
    return tmp_path


def refused(project: Path, *args: str) -> str:
    """Run the CLI, expect refusal; return its one stderr line."""
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 2, (result.exit_code, result.output, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    assert not (project / "ran.flag").exists(), "a step ran although the input was refused"
    assert not (project / ".run_log_store").exists() or not list((project / ".run_log_store").iterdir())
    return lines[0]


PIPELINE_CASES = {
    "no dag block": ({"steps": {}}, ["no 'dag' block"]),
    "missing start_at": (dag(start_at=None), ["dag.start_at", "required"]),
    "unknown start_at": (dag(start_at="nowhere"), ["dag.start_at", "'nowhere' is not a step"]),
    "next to nowhere": (
        dag(steps={"first": {"type": "task", "command": "steps.first", "next": "evaluate"}}),
        ["dag.steps.first.next", "'evaluate' is not a step", "known: fail, first, success"],
    ),
    # only the last step that routes may leave out next (it goes to success)
    "missing next": (
        dag(steps={"first": {"type": "task", "command": "steps.first"}, "then": {"type": "stub", "next": "success"}}),
        ["dag.steps.first.next"],
    ),
    "on_failure to nowhere": (
        dag(steps={"first": {"type": "task", "command": "steps.first", "next": "success", "on_failure": "gone"}}),
        ["dag.steps.first.on_failure", "'gone'"],
    ),
    "unreachable step": (
        dag(steps={"orphan": {"type": "stub", "next": "success"}}),
        ["dag.steps.orphan", "unreachable"],
    ),
    "cycle": (
        dag(
            steps={
                "first": {"type": "task", "command": "steps.first", "next": "second"},
                "second": {"type": "stub", "next": "first"},
            }
        ),
        ["cycle", "first -> second -> first"],
    ),
    "unknown node type": (
        dag(steps={"first": {"type": "taks", "command": "steps.first", "next": "success"}}),
        ["dag.steps.first.type", "unknown nodes type 'taks'", "installed:"],
    ),
    "unknown command_type": (
        dag(steps={"first": {"type": "task", "command": "x", "command_type": "perl", "next": "success"}}),
        ["dag.steps.first.command_type", "unknown tasks type 'perl'"],
    ),
    "notebook not installed": (
        dag(steps={"first": {"type": "task", "command": "x.ipynb", "command_type": "notebook", "next": "success"}}),
        ["dag.steps.first.command_type", "pip install magnus-task-notebook"],
    ),
    "task without command": (
        dag(steps={"first": {"type": "task", "next": "success"}}),
        ["dag.steps.first.command", "required"],
    ),
    "unknown task field": (
        dag(steps={"first": {"type": "task", "command": "steps.first", "next": "success", "nxt": "x"}}),
        ["dag.steps.first.nxt", "unknown field"],
    ),
    "map without iterate_on": (
        dag(
            steps={
                "first": {
                    "type": "map",
                    "iterate_as": "x",
                    "next": "success",
                    "branch": {"start_at": "s", "steps": {"s": {"type": "success"}, "f": {"type": "fail"}}},
                }
            }
        ),
        ["dag.steps.first.iterate_on", "required"],
    ),
    "parallel without branches": (
        dag(steps={"first": {"type": "parallel", "next": "success"}}),
        ["dag.steps.first.branches", "required"],
    ),
    "problem inside a branch": (
        dag(
            steps={
                "first": {
                    "type": "parallel",
                    "next": "success",
                    "branches": {
                        "a": {
                            "start_at": "x",
                            "steps": {
                                "x": {"type": "stub", "next": "y"},
                                "s": {"type": "success"},
                                "f": {"type": "fail"},
                            },
                        }
                    },
                }
            }
        ),
        ["dag.steps.first.branches.a.steps.x.next", "'y' is not a step"],
    ),
    "missing dag_definition file": (
        dag(steps={"first": {"type": "dag", "dag_definition": "missing.yaml", "next": "success"}}),
        ["dag.steps.first.dag_definition", "'missing.yaml' not found"],
    ),
    "two success nodes": (dag(steps={"done": {"type": "success"}}), ["exactly one step of type success, found 2"]),
    "dot in a step name": (
        dag(start_at="a.b", steps={"first": None, "a.b": {"type": "stub", "next": "success"}}),
        ["dag.steps.a.b", "cannot contain '.'"],
    ),
    "step is not a mapping": (dag(steps={"first": "steps.first"}), ["dag.steps.first", "must be a mapping"]),
    "terminal with next": (
        dag(steps={"success": {"type": "success", "next": "first"}}),
        ["dag.steps.success.next", "unknown field"],
    ),
}


@pytest.mark.parametrize("case", sorted(PIPELINE_CASES))
def test_malformed_pipelines_are_refused(project: Path, case: str) -> None:
    document, expected = PIPELINE_CASES[case]
    if case == "notebook not installed" and is_installed("tasks", "notebook"):
        pytest.skip("magnus-task-notebook is installed here")
    (project / "pipeline.yaml").write_text(yaml.safe_dump(document))
    line = refused(project, "execute", "-f", "pipeline.yaml")
    assert line.startswith("Error: pipeline.yaml: ")
    for fragment in expected:
        assert fragment in line


def test_invalid_yaml_is_refused(project: Path) -> None:
    (project / "pipeline.yaml").write_text("dag:\n  start_at: [unclosed\n")
    line = refused(project, "execute", "-f", "pipeline.yaml")
    assert "pipeline.yaml: not valid YAML" in line and "line" in line


def test_missing_pipeline_file_is_refused(project: Path) -> None:
    assert "nope.yaml: pipeline file not found" in refused(project, "execute", "-f", "nope.yaml")


def test_every_problem_is_reported_at_once(project: Path) -> None:
    document = dag(
        steps={
            "first": {"type": "task", "command": "steps.first", "next": "missing"},
            "second": {"type": "taks", "next": "success"},
        }
    )
    (project / "pipeline.yaml").write_text(yaml.safe_dump(document))
    line = refused(project, "execute", "-f", "pipeline.yaml")
    assert "dag.steps.first.next" in line and "dag.steps.second.type" in line


CONFIG_CASES = {
    "unknown executor type": (
        {"executor": {"type": "nomad"}},
        ["config.yaml: executor.type", "unknown executor type 'nomad'", "installed: ", "local", "mocked"],
    ),
    "unknown config key": (
        {"run_log_store": {"type": "file-system", "config": {"log_foldr": "x"}}},
        ["config.yaml: run_log_store.config.log_foldr: unknown field (allowed: log_folder)"],
    ),
    "unknown service": ({"executer": {"type": "local"}}, ["config.yaml: executer: unknown service"]),
    "wrong value type": (
        {"run_log_store": {"type": "file-system", "config": {"log_folder": ["a"]}}},
        ["run_log_store.config.log_folder"],
    ),
    "unknown block key": ({"executor": {"type": "local", "settings": {}}}, ["executor.settings: unknown field"]),
}


def _first_party_not_installed() -> list[tuple[str, str, str]]:
    from magnus.config import SERVICES
    from magnus.plugins import FIRST_PARTY_PACKAGES, is_installed

    return [
        (service, name, package)
        for (service, name), package in sorted(FIRST_PARTY_PACKAGES.items())
        if service in SERVICES and not is_installed(service, name)
    ]


@pytest.mark.parametrize("service, name, package", _first_party_not_installed())
def test_missing_first_party_plugin_says_what_to_install(project: Path, service: str, name: str, package: str) -> None:
    (project / "pipeline.yaml").write_text(yaml.safe_dump(dag()))
    (project / "config.yaml").write_text(yaml.safe_dump({service: {"type": name}}))
    line = refused(project, "execute", "-f", "pipeline.yaml", "-c", "config.yaml")
    assert f"config.yaml: {service}.type: unknown {service} type '{name}'" in line
    assert line.endswith(f"it is provided by {package}: pip install {package}")


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_malformed_configs_are_refused(project: Path, case: str) -> None:
    config, expected = CONFIG_CASES[case]
    (project / "pipeline.yaml").write_text(yaml.safe_dump(dag()))
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    line = refused(project, "execute", "-f", "pipeline.yaml", "-c", "config.yaml")
    for fragment in expected:
        assert fragment in line


def test_config_from_environment_variable(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "pipeline.yaml").write_text(yaml.safe_dump(dag()))
    (project / "env-config.yaml").write_text("executor:\n  type: nope\n")
    monkeypatch.setenv("MAGNUS_CONFIG_FILE", "env-config.yaml")
    assert "env-config.yaml: executor.type" in refused(project, "execute", "-f", "pipeline.yaml")


@pytest.mark.parametrize(
    "content, expected",
    [
        ("- 1\n- 2\n", "must be a mapping of names to values, got list"),
        ("a: [unclosed\n", "not valid YAML"),
        ("just a string\n", "got str"),
    ],
)
def test_malformed_parameter_files_are_refused(project: Path, content: str, expected: str) -> None:
    (project / "pipeline.yaml").write_text(yaml.safe_dump(dag()))
    (project / "params.yaml").write_text(content)
    line = refused(project, "execute", "-f", "pipeline.yaml", "-p", "params.yaml")
    assert "params.yaml: " in line and expected in line


def test_missing_parameter_file_is_refused(project: Path) -> None:
    (project / "pipeline.yaml").write_text(yaml.safe_dump(dag()))
    assert "gone.yaml: parameters file not found" in refused(
        project, "execute", "-f", "pipeline.yaml", "-p", "gone.yaml"
    )


def test_bad_mocked_patch_is_refused(project: Path) -> None:
    (project / "pipeline.yaml").write_text(yaml.safe_dump(dag()))
    config = {"executor": {"type": "mocked", "config": {"patches": {"nope": {"command": "x.y"}}}}}
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    line = refused(project, "execute", "-f", "pipeline.yaml", "-c", "config.yaml")
    assert "executor.config.patches.nope" in line and "not a task" in line


def test_use_cached_of_an_unknown_run_is_refused(project: Path) -> None:
    (project / "pipeline.yaml").write_text(yaml.safe_dump(dag()))
    (project / "config.yaml").write_text(textwrap.dedent("run_log_store:\n  type: file-system\n"))
    line = refused(project, "execute", "-f", "pipeline.yaml", "-c", "config.yaml", "--use-cached", "old-run")
    assert "--use-cached old-run" in line and "not found" in line
