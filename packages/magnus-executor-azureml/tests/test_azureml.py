"""The azureml executor: jobs Azure's own SDK loads and validates, and walks of them that end as local runs do."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml
from walker import JobWalker

from magnus.cli import parse_request
from magnus.datastore.file_system import FileSystemRunLogStore
from magnus.entrypoints import execute, load_pipeline
from magnus.errors import ConfigurationError
from magnus.plugins import is_installed
from magnus.reach import Reach
from magnus.runtime.request import FanIn, FanOut, NextIteration, RunStep, WalkBranch
from magnus.testing.executor import outcome
from magnus_executor_azureml import iteration
from magnus_executor_azureml.items import as_items
from magnus_executor_azureml.submit import load_pipeline_job, submit_job

ROOT = Path(__file__).resolve().parents[3]
# Every pipeline under examples/, as a path relative to it.
PIPELINES = sorted(
    path.relative_to(ROOT / "examples").as_posix()
    for path in (ROOT / "examples").rglob("*.yaml")
    if "dag" in (yaml.safe_load(path.read_text()) or {})
)
EXAMPLES = [name for name in PIPELINES if "/" not in name]
CONCEPTS = ["concepts/custom_reducer.yaml", "concepts/conditional.yaml", "concepts/loop.yaml"]
# A top-level on_failure to a step has no route in Azure ML.
REFUSED = {"concepts/on_failure.yaml": "on_failure 'recover' cannot be rendered"}
RENDERED = [name for name in PIPELINES if name not in REFUSED]
JOB = "pipeline-job.yaml"


class SharedFileSystemStore(FileSystemRunLogStore):
    """The file-system run log store declaring that every host reaches its folder: a database's stand-in.

    The nodes walked here share this machine's folder, as Azure ML's nodes share a database."""

    def reach(self) -> Reach:
        return Reach.ANYWHERE

    def local_paths(self) -> List[str]:
        return []


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder holding the repository's examples, an azureml and a local configuration."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AZURE_ML_CLI_PRIVATE_FEATURES_ENABLED", "true")  # parallel_for in a job's YAML
    # The catalog is named: with magnus-catalog-fs installed beside, the default would be a local folder.
    stores = {
        "run_log_store": {"type": "file-system", "config": {"log_folder": str(tmp_path / "shared")}},
        "catalog": {"type": "do-nothing"},
    }
    azureml = {
        "executor": {
            "type": "azureml",
            "config": {
                "compute": "cpu-cluster",
                "environment": "azureml:magnus-env:3",
                "output_file": JOB,
                "overrides": {"gpu": {"compute": "gpu-cluster", "instance_count": 1}},
            },
        },
        **stores,
    }
    (tmp_path / "azureml.yaml").write_text(yaml.safe_dump(azureml))
    local = {
        "run_log_store": {"type": "file-system", "config": {"log_folder": str(tmp_path / "local")}},
        "catalog": {"type": "do-nothing"},
    }
    (tmp_path / "local.yaml").write_text(yaml.safe_dump(local))
    monkeypatch.setattr(FileSystemRunLogStore, "reach", SharedFileSystemStore.reach)
    monkeypatch.setattr(FileSystemRunLogStore, "local_paths", SharedFileSystemStore.local_paths)
    return tmp_path


def render(example: str, config: str = "azureml.yaml") -> Dict[str, Any]:
    assert execute(f"examples/{example}", config, "examples/parameters.yaml") is None, "azureml hands the run over"
    rendered: Dict[str, Any] = yaml.safe_load(Path(JOB).read_text())
    return rendered


def magnus_commands(command: str) -> List[List[str]]:
    """The magnus command lines of a node's shell command (split at ``||``, ``&&``, ``;`` and parentheses)."""
    found = []
    lexer = shlex.shlex(command.replace("${{inputs.map_variable}}", "'{}'"), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    argv: List[str] = []
    for word in [*lexer, ";"]:
        if word not in ("&&", "||", ";", "(", ")"):
            argv.append(word)
            continue
        argv = argv[1:] if argv[:1] in (["then"], ["else"]) else argv
        if argv and argv[0] == "magnus":
            found.append(argv[1:])
        argv = []
    return found


@pytest.mark.parametrize("example", RENDERED)
def test_every_example_loads_as_an_azure_pipeline_job_and_round_trips(project: Path, example: str) -> None:
    if example == "concepts/task_notebook.yaml" and not is_installed("tasks", "notebook"):
        pytest.skip("the notebook task type is magnus-task-notebook's, not installed with this package alone")
    rendered = render(example)
    job = load_pipeline_job(JOB)  # Azure's load_job (its schema) and the job's own validation
    plan = load_pipeline(f"examples/{example}").plan
    assert set(job.jobs) == set(rendered["jobs"])
    assert job.settings.force_rerun is True and job.settings.default_compute.endswith("cpu-cluster")
    top = [unit for unit in plan.of_graph(plan.graphs[""]) if unit.node.name != "fail"]
    loops = [unit for unit in top if unit.kind == "branch" and unit.node.iterates]
    maps = [unit for unit in top if unit.kind == "branch" and unit.dynamic and unit not in loops]
    control = {name: node for name, node in rendered["jobs"].items() if node["type"] == "parallel_for"}
    assert len(control) == len(maps), "a parallel_for per map at the top"
    for name, node in control.items():
        assert job.jobs[name].type == "parallel_for"
        assert node["items"].startswith("${{parent.jobs.") and node["items"].endswith(".outputs.items}}")
    do_whiles = {name: node for name, node in rendered["jobs"].items() if node["type"] == "do_while"}
    assert len(do_whiles) == len(loops), "a do_while per loop at the top"
    for name in do_whiles:
        loop = job.jobs[name]
        assert loop.type == "do_while" and loop.body.name == f"{name}_body"
        body_outputs = rendered["jobs"][f"{name}_body"]["component"]["outputs"]
        assert loop.condition._port_name == "go_on" and body_outputs["go_on"]["is_control"] is True
        assert loop.limits.max_iteration_count == next(unit.node.max_iterations for unit in loops)
    # Every command parses back into the launch request of its unit; the fail node only after a failure.
    requests = []
    for name, node in rendered["jobs"].items():
        if node["type"] != "command":
            continue
        spec = node.get("component", node)
        lines = magnus_commands(spec["command"])
        parsed = [parse_request(argv) for argv in lines]
        requests.append(parsed[0])
        assert all(request.run.run_id == rendered["tags"]["magnus_run_id"] for request in parsed)
        if name in {f"{loop}_body" for loop in do_whiles}:  # walks its iteration, then decides the next
            assert [type(request) for request in parsed] == [WalkBranch, NextIteration], name
            continue
        assert all(isinstance(request, RunStep) and request.step == "fail" for request in parsed[1:]), name
    kinds = sorted(type(request).__name__ for request in requests)
    expected = sorted(
        {"step": RunStep, "end": RunStep, "fan-out": FanOut, "fan-in": FanIn, "branch": WalkBranch}[unit.kind].__name__
        for unit in top
    )
    assert kinds == expected
    # Dependencies: each node waits for the nodes leading to it on success.
    for node in rendered["jobs"].values():
        for key, binding in node.get("inputs", {}).items():
            if key.startswith("after_"):
                assert binding == "${{parent.jobs." + key[len("after_") :] + ".outputs.done}}"
                assert key[len("after_") :] in rendered["jobs"]
    # The SDK's own round trip is stable.
    once = job._to_dict()
    Path("again.yaml").write_text(yaml.safe_dump(once))
    assert load_pipeline_job("again.yaml")._to_dict() == once


def test_the_rendered_pipeline_job_of_examples_pipeline(project: Path) -> None:
    rendered = render("pipeline.yaml")
    jobs = rendered["jobs"]
    assert list(jobs) == [
        "prepare",
        "process_fan_out",
        "process_chunks",
        "process_shell",
        "process_fan_in",
        "train",
        "evaluate_fan_out",
        "evaluate_dag",
        "evaluate_fan_in",
        "report",
        "success",
    ]
    assert jobs["process_fan_in"]["inputs"] == {
        "after_process_chunks": "${{parent.jobs.process_chunks.outputs.done}}",
        "after_process_shell": "${{parent.jobs.process_shell.outputs.done}}",
    }
    assert jobs["process_chunks"]["command"].endswith("|| test $? -eq 1")
    assert jobs["train"]["environment"] == "azureml:magnus-env:3"


def local_run(example: str, name: str) -> Any:
    return execute(f"examples/{example}", "local.yaml", "examples/parameters.yaml", run_id=f"local-{name}")


# A loop whose third iteration fails: the loop ends there, FAIL, and the run with it.
FAILING_LOOP = {
    "dag": {
        "start_at": "again",
        "steps": {
            "again": {
                "type": "loop",
                "max_iterations": 5,
                "break_on": "never_set",
                "index_as": "turn",
                "branch": {
                    "start_at": "work",
                    "steps": {
                        "work": {"type": "task", "command_type": "shell", "command": 'test "$MAGNUS_PRM_turn" != 2'},
                        "success": {"type": "success"},
                        "fail": {"type": "fail"},
                    },
                },
            },
            "success": {"type": "success"},
            "fail": {"type": "fail"},
        },
    }
}


def walk(rendered: Dict[str, Any], project: Path) -> Any:
    environment = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "AZUREML_RUN_ID": "x"}
    return JobWalker(rendered, project, project / "outputs", environment).walk()


@pytest.mark.parametrize("example", ["pipeline.yaml", "map_reduce.yaml", "resume.yaml", *CONCEPTS, "failing_loop.yaml"])
def test_the_walked_job_ends_as_the_local_run(project: Path, example: str) -> None:
    (project / "examples" / "failing_loop.yaml").write_text(yaml.safe_dump(FAILING_LOOP))
    rendered = render(example)
    run_id = rendered["tags"]["magnus_run_id"]
    walked = walk(rendered, project)
    walked_log = FileSystemRunLogStore(log_folder=str(project / "shared")).get_run_log_by_id(run_id)
    local = local_run(example, Path(example).stem)
    assert outcome(walked_log) == outcome(local), [c["output"][-500:] for c in walked.commands if c["exit"]]
    assert walked_log.parameters == local.parameters
    assert walked_log.status == local.status
    assert walked.status == ("Completed" if local.status == "SUCCESS" else "Failed")


@pytest.mark.parametrize("example, message", sorted(REFUSED.items()))
def test_what_azure_ml_cannot_route_is_refused_before_rendering(project: Path, example: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        render(example)
    assert not Path(JOB).exists()


def test_refusals_are_one_line_with_exit_code_2(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the file-system store keeps its state on this machine again
    done = subprocess.run(
        [sys.executable, "-m", "magnus", "execute", "-f", "examples/pipeline.yaml", "-c", "azureml.yaml"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert "is on this machine, which the Azure ML compute does not see" in done.stderr
    assert not (project / JOB).exists()


def configured(project: Path, **config: Any) -> str:
    settings = yaml.safe_load((project / "azureml.yaml").read_text())
    settings["executor"]["config"].update(config)
    settings["executor"]["config"] = {key: value for key, value in settings["executor"]["config"].items() if value}
    (project / "changed.yaml").write_text(yaml.safe_dump(settings))
    return "changed.yaml"


@pytest.mark.parametrize(
    "config, message",
    [
        ({"compute": ""}, "compute"),
        ({"environment": ""}, "environment"),
        ({"output_file": "", "subscription_id": "sub"}, "go together"),
        ({"output_file": ""}, "set output_file"),
    ],
)
def test_missing_required_configuration_is_refused(project: Path, config: Dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        render("pipeline.yaml", configured(project, **config))


def test_unknown_override_names_are_refused_and_known_ones_change_one_node(project: Path) -> None:
    pipeline = yaml.safe_load((project / "examples" / "resume.yaml").read_text())
    pipeline["dag"]["steps"]["fetch"]["overrides"] = {"azureml": "huge"}
    (project / "examples" / "overridden.yaml").write_text(yaml.safe_dump(pipeline))
    with pytest.raises(ConfigurationError, match=r"overrides\.azureml 'huge' is not in executor\.config\.overrides"):
        render("overridden.yaml")
    pipeline["dag"]["steps"]["fetch"]["overrides"] = {"azureml": "gpu"}
    (project / "examples" / "overridden.yaml").write_text(yaml.safe_dump(pipeline))
    jobs = render("overridden.yaml")["jobs"]
    assert jobs["fetch"]["compute"] == "azureml:gpu-cluster"
    assert jobs["fetch"]["resources"] == {"instance_count": 1}
    assert "compute" not in jobs["prepare"]
    load_pipeline_job(JOB)


def test_a_file_outside_the_code_folder_is_refused(project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "params.yaml"
    elsewhere.write_text("x: 1\n")
    with pytest.raises(Exception, match="is outside the code folder"):
        execute("examples/pipeline.yaml", "azureml.yaml", str(elsewhere))


class RecordingJobs:
    """What ``MLClient.jobs`` is handed, kept; answers as the service does, with the job named."""

    def __init__(self) -> None:
        self.created: List[Dict[str, Any]] = []

    def create_or_update(self, job: Any, **options: Any) -> Any:
        self.created.append({"job": job, **options})
        job.name = "magnus_job_1"
        return job


class RecordingClient:
    def __init__(self) -> None:
        self.jobs = RecordingJobs()


def test_submission_hands_azure_a_validated_pipeline_job(project: Path) -> None:
    from azure.ai.ml.entities import PipelineJob

    render("map_reduce.yaml")
    client = RecordingClient()
    settings = {"compute": "cpu-cluster", "environment": "azureml:magnus-env:3", "experiment_name": "exp"}
    workspace = {"subscription_id": "sub", "resource_group": "rg", "workspace_name": "ws"}
    from magnus_executor_azureml.settings import AzureMLSettings

    url = submit_job(AzureMLSettings(**settings, **workspace), JOB, client_for=lambda _: client)
    (sent,) = client.jobs.created
    assert isinstance(sent["job"], PipelineJob) and sent["experiment_name"] == "exp"
    assert sent["job"]._validate().passed
    assert set(sent["job"].jobs) == set(yaml.safe_load(Path(JOB).read_text())["jobs"])
    assert url == "magnus_job_1"


def test_map_items_are_parallel_for_items_quoted_for_the_shell() -> None:
    items = as_items('["{\\"chunk\\": 1}", "{\\"chunk\\": \\"it\'s\\"}"]')
    values = [item["map_variable"] for item in yaml.safe_load(items)]
    assert [shlex.split(value) for value in values] == [['{"chunk": 1}'], ['{"chunk": "it\'s"}']]


def test_a_value_azure_ml_would_read_as_an_expression_is_refused(project: Path) -> None:
    from magnus.errors import UserInputError

    with pytest.raises(UserInputError, match=re.escape("Azure ML would read '${{' in a command")):
        execute("examples/pipeline.yaml", "azureml.yaml", "examples/parameters.yaml", tag="v${{inputs.x}}")
    assert not Path(JOB).exists()


def test_a_loop_over_azure_mls_do_while_limit_is_refused(project: Path) -> None:
    too_long = yaml.safe_load(yaml.safe_dump(FAILING_LOOP))
    too_long["dag"]["steps"]["again"]["max_iterations"] = 1001
    (project / "examples" / "long_loop.yaml").write_text(yaml.safe_dump(too_long))
    with pytest.raises(ConfigurationError, match=re.escape("step 'again': max_iterations 1001 is more than Azure ML")):
        render("long_loop.yaml")
    assert not Path(JOB).exists()


def test_a_loops_position_and_control_output_as_do_while_reads_them(tmp_path: Path) -> None:
    iterations = tmp_path / "iterations.json"
    iterations.write_text(json.dumps(['{"turn": 1}']))
    go_on = tmp_path / "go_on"
    assert iteration.main([str(iterations), str(tmp_path / "next"), str(go_on)]) == 0
    assert (tmp_path / "next" / "map_variable").read_text() == '{"turn": 1}'
    assert json.loads(go_on.read_text()) is True
    iterations.write_text("[]")  # core ended the loop
    assert iteration.main([str(iterations), str(tmp_path / "last"), str(go_on)]) == 0
    assert json.loads(go_on.read_text()) is False


def test_the_control_output_goes_to_the_run_history_of_the_node_on_azure_ml_only() -> None:
    on_azure = {
        "MLFLOW_TRACKING_URI": "azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/s/resourceGroups/g/"
        "providers/Microsoft.MachineLearningServices/workspaces/w",
        "MLFLOW_EXPERIMENT_ID": "e-1",
        "MLFLOW_RUN_ID": "r-1",
    }
    assert iteration.run_history_url(on_azure) == (
        "https://westeurope.api.azureml.ms/history/v1.0/subscriptions/s/resourceGroups/g/"
        "providers/Microsoft.MachineLearningServices/workspaces/w/experimentids/e-1/runs/r-1"
    )
    assert iteration.run_history_url({**on_azure, "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"}) is None
    assert iteration.run_history_url({}) is None


def test_retries_are_made_inside_the_step_node_and_numbered_in_the_run_log(project: Path) -> None:
    rendered = render("concepts/retries.yaml")  # command nodes have no retry settings in Azure ML
    assert "retry_settings" not in rendered["jobs"]["download"]
    walked = walk(rendered, project)
    log = FileSystemRunLogStore(log_folder=str(project / "shared")).get_run_log_by_id(rendered["tags"]["magnus_run_id"])
    attempts = log.steps["download"].attempts
    assert [(attempt.attempt_number, attempt.status) for attempt in attempts] == [
        (1, "FAIL"),
        (2, "FAIL"),
        (3, "SUCCESS"),
    ]
    assert walked.status == "Completed" and log.status == "SUCCESS"
