"""The argo executor: valid manifests, and runs of them that end as local runs do."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any, ClassVar, Dict, List

import pytest
import yaml
from hera.workflows import models as m

from magnus import defaults, entrypoints
from magnus.datastore.file_system import FileSystemRunLogStore
from magnus.entrypoints import execute
from magnus.errors import ConfigurationError, UserInputError
from magnus.reach import Reach
from magnus.secrets import BaseSecrets
from magnus.testing.executor import COLLIDING_NAMES, STEPS_MODULE, RecordedEvents, outcome
from magnus.testing.executor import PIPELINES as CONTRACT_PIPELINES
from magnus_executor_argo.emulator import TemplateTagError, WorkflowEmulator
from magnus_executor_argo.names import dns_name

GOLDEN = Path(__file__).parent / "golden"
LONG = "Shell Step With A Very Long Name That Goes On Beyond Sixty Three Characters"
TERMINALS = {"success": {"type": "success"}, "fail": {"type": "fail"}}

STEPS = """
from pathlib import Path


def first(x: int) -> dict:
    return {"y": x + 1}


def per_item(item: int, y: int) -> dict:
    return {f"seen_{item}": item * y}


def breaks() -> None:
    raise ValueError("broken on purpose")


def flaky() -> None:
    # Fails on its first two launches (each of Argo's retries is a new pod).
    launches = Path("launches")
    launches.write_text(launches.read_text() + "x" if launches.exists() else "x")
    if len(launches.read_text()) < 3:
        raise RuntimeError("not yet")


def counted(x: int) -> dict:
    ran = Path("counted")
    ran.write_text(ran.read_text() + "x" if ran.exists() else "x")
    return {"y": x + 1}


def gate() -> None:
    if not Path("open").exists():
        raise RuntimeError("closed")


def recover() -> dict:
    return {"recovered": True}


def said(text: str) -> None:
    print(text)
"""


def task(command: str, next_step: str = "success", **extra: Any) -> Dict[str, Any]:
    return {"type": "task", "command": command, "next": next_step, **extra}


def dag(start_at: str, steps: Dict[str, Any]) -> Dict[str, Any]:
    return {"start_at": start_at, "steps": {**steps, **TERMINALS}}


MAP = {
    "type": "map",
    "iterate_on": "items",
    "iterate_as": "item",
    "next": "success",
    "branch": dag("work", {"work": task("argo_steps.per_item")}),
}

LOOP = CONTRACT_PIPELINES["loop"]["steps"]["repeat"]
CONDITIONAL = CONTRACT_PIPELINES["conditional"]["steps"]["choose"]

PIPELINES: Dict[str, Dict[str, Any]] = {
    "linear": dag(
        "first step",
        {
            "first step": task("argo_steps.first", LONG),
            LONG: task('export MAGNUS_PRM_from_shell="$MAGNUS_PRM_y"', command_type="shell"),
        },
    ),
    "on_failure": dag(
        "breaks", {"breaks": task("argo_steps.breaks", on_failure="recover"), "recover": task("argo_steps.recover")}
    ),
    "failing": dag("breaks", {"breaks": task("argo_steps.breaks")}),
    "parallel": dag(
        "first",
        {
            "first": task("argo_steps.first", "both"),
            "both": {
                "type": "parallel",
                "next": "success",
                "branches": {
                    "a": dag("w", {"w": {"type": "stub", "next": "success"}}),
                    "b": dag("w", {"w": task("argo_steps.recover")}),
                },
            },
        },
    ),
    "map": dag("first", {"first": task("argo_steps.first", "each"), "each": MAP}),
    "nested_dag": dag(
        "first",
        {
            "first": task("argo_steps.first", "inner"),
            "inner": {"type": "dag", "dag_definition": "inner.yaml", "next": "success"},
        },
    ),
    "map_in_parallel": dag(
        "first",
        {
            "first": task("argo_steps.first", "both"),
            "both": {
                "type": "parallel",
                "next": "success",
                "branches": {
                    "mapped": dag("each", {"each": MAP}),
                    "plain": dag("w", {"w": task("argo_steps.recover")}),
                },
            },
        },
    ),
    "map_of_failures": dag("each", {"each": {**MAP, "branch": dag("work", {"work": task("argo_steps.breaks")})}}),
    "flaky": dag("flaky", {"flaky": task("argo_steps.flaky")}),
    # conditional and loop steps, and a reducer of your own, as the executor contract runs them
    **{
        name: CONTRACT_PIPELINES[name]
        for name in ("conditional", "conditional_unmatched", "loop", "loop_limit", "loop_not_boolean", "reducer")
    },
    "loop_in_map": dag("each", {"each": {**MAP, "branch": dag("repeat", {"repeat": LOOP})}}),
    "conditional_in_map": dag(
        "first",
        {
            "first": task("argo_steps.first", "each"),
            "each": {**MAP, "branch": dag("choose", {"choose": {**CONDITIONAL, "parameter": "item"}})},
        },
    ),
    "resumable": dag(
        "counted",
        {
            "counted": task("argo_steps.counted", "each"),
            "each": {**MAP, "next": "gate"},
            "gate": task("argo_steps.gate"),
        },
    ),
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder; ``mnt/`` stands in for the persistent volume every pod mounts."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "argo_steps.py").write_text(textwrap.dedent(STEPS))
    (tmp_path / "contract_steps.py").write_text(textwrap.dedent(STEPS_MODULE))
    (tmp_path / "params.yaml").write_text("x: 1\nitems: [1, 2, 3]\n")
    (tmp_path / "inner.yaml").write_text(yaml.safe_dump({"dag": dag("in", {"in": task("argo_steps.recover")})}))
    mount = tmp_path / "mnt"
    argo = {
        "executor": {
            "type": "argo",
            "config": {
                "image": "registry.example.com/project:1.0",
                "persistent_volumes": [{"name": "magnus-volume", "mount_path": str(mount)}],
                "secrets_from_k8s": [{"environment_variable": "API_KEY", "secret_name": "app", "secret_key": "key"}],
                "overrides": {
                    "big": {
                        "image": "registry.example.com/project-big:1.0",
                        "resources": {"requests": {"memory": "8Gi"}, "limits": {"memory": "8Gi"}},
                    }
                },
            },
        },
        "run_log_store": {"type": "file-system", "config": {"log_folder": str(mount / "logs")}},
        "catalog": {"type": "do-nothing"},
    }
    (tmp_path / "argo.yaml").write_text(yaml.safe_dump(argo))
    local = {
        "run_log_store": {"type": "file-system", "config": {"log_folder": str(tmp_path / "local-logs")}},
        "catalog": {"type": "do-nothing"},
    }
    (tmp_path / "local.yaml").write_text(yaml.safe_dump(local))
    return tmp_path


def render(project: Path, name: str, config: str = "argo.yaml") -> Dict[str, Any]:
    pipeline = PIPELINES[name] if name in PIPELINES else CONTRACT_PIPELINES[name]
    (project / f"{name}.yaml").write_text(yaml.safe_dump({"dag": pipeline}))
    assert execute(f"{name}.yaml", config, "params.yaml") is None, "argo hands the run over"
    return yaml.safe_load((project / "argo-pipeline.yaml").read_text())


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_manifests_are_valid_argo_and_round_trip_through_hera(
    project: Path, name: str, workflow_validator: Any
) -> None:
    manifest = render(project, name)
    errors = sorted(workflow_validator.iter_errors(manifest), key=str)
    assert not errors, [f"{list(error.absolute_path)}: {error.message}" for error in errors[:5]]
    again = m.Workflow.model_validate(manifest).model_dump(by_alias=True, exclude_none=True, mode="json")
    assert again == manifest
    first = (project / "argo-pipeline.yaml").read_bytes()
    render(project, name)
    assert (project / "argo-pipeline.yaml").read_bytes() == first, "the same input renders the same bytes"


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_emulated_workflow_ends_as_the_local_run(project: Path, name: str) -> None:
    manifest = render(project, name)
    emulator = WorkflowEmulator(
        manifest,
        workdir=project,
        command_prefix=[sys.executable, "-m", "magnus"],
        secrets={("app", "key"): "not-a-real-key"},
    )
    phase = emulator.run()
    run_id = emulator.uid
    argo_log = FileSystemRunLogStore(log_folder=str(project / "mnt" / "logs")).get_run_log_by_id(run_id)

    local = execute(f"{name}.yaml", "local.yaml", "params.yaml", run_id=f"local-{name}")
    assert local is not None
    assert outcome(argo_log) == outcome(local), [
        step.output[-600:] for step in emulator.steps if step.phase == "Failed"
    ]
    assert argo_log.parameters == local.parameters
    assert argo_log.status == local.status
    assert phase == ("Succeeded" if local.status == "SUCCESS" else "Failed")


def test_a_map_fan_out_pod_imports_no_hera_and_core_writes_the_iterations(project: Path) -> None:
    """A map's fan-out pod runs core's ``magnus fan ... --iterations-file``: no hera, only the executor class."""
    manifest = render(project, "map")
    fan_out = next(t for t in manifest["spec"]["templates"] if t["name"] == "each-fan-out")
    path = fan_out["outputs"]["parameters"][0]["valueFrom"]["path"]
    iterations = project / "iterations.json"
    args = [str(iterations) if arg == path else arg for arg in fan_out["container"]["args"]]
    args = [arg.replace("{{workflow.parameters.run_id}}", "pod-run") for arg in args]
    probe = (
        "import atexit, json, runpy, sys; "
        "atexit.register(lambda: print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in WATCHED)))); "
        "WATCHED = ('hera', 'magnus_executor_argo'); "
        "sys.argv = ['magnus', *sys.argv[1:]]; runpy.run_module('magnus', run_name='__main__')"
    )
    environment = {**os.environ, "MAGNUS_PRM_x": "1", "MAGNUS_PRM_items": "[1, 2, 3]"}
    done = subprocess.run(
        [sys.executable, "-c", probe, *args], cwd=project, env=environment, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    imported = json.loads(done.stdout.strip().splitlines()[-1])
    executor_only = {"executor", "settings", "constants", "names", "paths", "version"}
    assert set(imported) <= {"magnus_executor_argo", *(f"magnus_executor_argo.{name}" for name in executor_only)}
    assert not [name for name in imported if name.split(".")[0] == "hera"], imported
    written = [json.loads(value) for value in json.loads(iterations.read_text())]
    assert written == [{"item": 1}, {"item": 2}, {"item": 3}]


def test_map_items_magnus_0_5_1_named_alike_keep_their_own_pods_and_branches(project: Path) -> None:
    """``withParam`` over core's iterations: ``1`` and ``"1"`` are two pods, each logging under its own branch."""
    emulator = emulate(project, render(project, "colliding_map"))
    work = [step for step in emulator.steps if step.template == dns_name(f"each.{defaults.MAP_PLACEHOLDER}.work")]
    positions = [json.loads(step.args[step.args.index("--map-variable") + 1]) for step in work]
    assert len({json.dumps(position) for position in positions}) == len(COLLIDING_NAMES) == len(work)
    run_log = argo_run_log(project, emulator.uid)
    branches = run_log.steps["each"].branches
    assert list(branches) == [f"each.{name}" for name in COLLIDING_NAMES]
    assert [branch.status for branch in branches.values()] == ["FAIL"] + ["SUCCESS"] * 7
    assert run_log.status == "FAIL"
    local = execute("colliding_map.yaml", "local.yaml", "params.yaml", run_id="local-colliding")
    assert local is not None and outcome(run_log) == outcome(local)


def test_templates_have_dns_names_and_steps_keep_theirs(project: Path) -> None:
    manifest = render(project, "linear")
    names = [template["name"] for template in manifest["spec"]["templates"]]
    assert len(names) == len(set(names))
    for template_name in names:
        assert dns_name(template_name) == template_name
    long_step = LONG.replace(" ", "%")
    container = next(
        t for t in manifest["spec"]["templates"] if t.get("container") and long_step in t["container"]["args"]
    )
    assert container["container"]["args"][:4] == [
        "execute_single_node",
        "{{workflow.parameters.run_id}}",
        "linear.yaml",
        long_step,
    ]
    assert len(container["name"]) <= 63
    first = next(
        t for t in manifest["spec"]["templates"] if t.get("container") and "first%step" in t["container"]["args"]
    )
    assert first["name"].startswith("first-step-")


def test_dns_names() -> None:
    assert dns_name("train") == "train"
    assert dns_name("Train Model.v2") != dns_name("train-model-v2")
    long = dns_name("x" * 200)
    assert len(long) <= 63 and long == dns_name("x" * 200)
    assert dns_name("9lives")[0].isalpha()


def test_parameters_are_workflow_arguments_and_secrets_only_names(project: Path) -> None:
    manifest = render(project, "linear")
    arguments = {p["name"]: p["value"] for p in manifest["spec"]["arguments"]["parameters"]}
    assert arguments == {"run_id": "{{workflow.uid}}", "x": "1", "items": "[1, 2, 3]"}
    container = next(t["container"] for t in manifest["spec"]["templates"] if "container" in t)
    env = {variable["name"]: variable for variable in container["env"]}
    assert env["MAGNUS_PRM_x"]["value"] == "{{workflow.parameters.x}}"
    assert env["API_KEY"] == {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"key": "key", "name": "app"}}}
    assert container["volumeMounts"] == [{"mountPath": str(project / "mnt"), "name": "magnus-volume"}]


class KnownSecrets(BaseSecrets):
    """A secrets backend that declares its values up front (as a dotenv file does)."""

    service_name: ClassVar[str] = "known"

    def values_to_mask(self) -> List[str]:
        return [TOKEN]

    def get(self, name: str) -> str:
        return TOKEN


TOKEN = "s3cret-token"


def test_secret_values_given_as_parameters_never_enter_the_manifest(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = entrypoints.create_service

    def create(name: str, block: Dict[str, Any], source: str = "configuration") -> Any:
        return KnownSecrets() if name == "secrets" else real(name, block, source)

    monkeypatch.setattr(entrypoints, "create_service", create)
    (project / "params.yaml").write_text(
        f"x: 1\nitems: [1, 2, 3]\ntoken: {TOKEN}\nnested: {{url: 'https://u:{TOKEN}@h'}}\n"
    )
    manifest = render(project, "linear")
    assert TOKEN not in (project / "argo-pipeline.yaml").read_text()
    arguments = {p["name"]: p["value"] for p in manifest["spec"]["arguments"]["parameters"]}
    assert (json.loads(arguments["token"]), arguments["x"]) == ("***", "1")
    assert json.loads(arguments["nested"]) == {"url": "https://u:***@h"}


def test_overrides_change_one_step(project: Path) -> None:
    PIPELINES["overridden"] = dag(
        "a", {"a": task("argo_steps.first", "b", overrides={"argo": "big"}), "b": task("argo_steps.recover")}
    )
    manifest = render(project, "overridden")
    images = {t["name"]: t["container"]["image"] for t in manifest["spec"]["templates"] if "container" in t}
    assert images["a"] == "registry.example.com/project-big:1.0"
    assert images["b"] == "registry.example.com/project:1.0"
    big = next(t for t in manifest["spec"]["templates"] if t["name"] == "a")
    assert big["container"]["resources"]["limits"] == {"memory": "8Gi"}


def configure(project: Path, **changes: Any) -> str:
    config = yaml.safe_load((project / "argo.yaml").read_text())
    for path, value in changes.items():
        target = config
        *parents, last = path.split("__")
        for key in parents:
            target = target.setdefault(key, {})
        target[last] = value
    (project / "changed.yaml").write_text(yaml.safe_dump(config))
    return "changed.yaml"


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"run_log_store": {"type": "buffered"}}, "keeps its state in one process"),
        ({"run_log_store__config__log_folder": "/elsewhere/logs"}, "is not on a persistent volume"),
        ({"executor__config__persistent_volumes": []}, "is not on a persistent volume"),
    ],
)
def test_combinations_that_cannot_work_are_refused(project: Path, changes: Dict[str, Any], message: str) -> None:
    config = configure(project, **changes)
    (project / "linear.yaml").write_text(yaml.safe_dump({"dag": PIPELINES["linear"]}))
    with pytest.raises(ConfigurationError, match=message):
        execute("linear.yaml", config, "params.yaml")
    assert not (project / "argo-pipeline.yaml").exists()


def test_unknown_override_is_refused(project: Path) -> None:
    PIPELINES["bad_override"] = dag("a", {"a": task("argo_steps.first", overrides={"argo": "huge"})})
    with pytest.raises(ConfigurationError, match=r"overrides\.argo 'huge' is not in executor\.config\.overrides"):
        render(project, "bad_override")


class _RecordingArgoServer(http.server.BaseHTTPRequestHandler):
    requests: List[Dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _RecordingArgoServer.requests.append(
            {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
        )
        workflow = body.get("workflow") or body["cronWorkflow"]
        workflow["metadata"]["name"] = "magnus-abcde"
        payload = json.dumps(workflow).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


def test_submission_reaches_the_argo_server(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _RecordingArgoServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        monkeypatch.setenv("ARGO_TOKEN", "Bearer test-token")
        config = configure(
            project,
            executor__config__submit=True,
            executor__config__argo_server_url=url,
            executor__config__namespace="ml",
        )
        (project / "map.yaml").write_text(yaml.safe_dump({"dag": PIPELINES["map"]}))
        events = RecordedEvents()
        execute("map.yaml", config, "params.yaml", events=events)
    finally:
        server.shutdown()
    request = _RecordingArgoServer.requests[-1]
    assert request["path"] == "/api/v1/workflows/ml"
    assert request["auth"] == "Bearer test-token"
    rendered = yaml.safe_load((project / "argo-pipeline.yaml").read_text())
    assert request["body"]["workflow"]["spec"] == rendered["spec"]
    assert ("handed_off", f"Submitted to {url} as magnus-abcde") in events.seen


CLUSTER_SETTINGS = {
    "executor__config__schedule": "0 3 * * *",
    "executor__config__timezone": "Europe/Berlin",
    "executor__config__retry_strategy": {"limit": 2, "retry_policy": "OnFailure"},
    "executor__config__resources": {"requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"memory": "2Gi"}},
    "executor__config__max_step_duration_in_seconds": 3600,
}


@pytest.mark.parametrize(
    "name, golden_name, changes",
    [
        ("linear", "linear", {}),
        ("map_in_parallel", "map_in_parallel", {}),
        ("flaky", "flaky_scheduled", CLUSTER_SETTINGS),
    ],
)
def test_golden_manifests(project: Path, name: str, golden_name: str, changes: Dict[str, Any]) -> None:
    """Reviewed by eye once; regenerate with UPDATE_GOLDEN=1 after an intended change."""
    render(project, name, configure(project, **changes) if changes else "argo.yaml")
    text = (project / "argo-pipeline.yaml").read_text().replace(str(project), "/project")
    golden = GOLDEN / f"{golden_name}.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


# ---- on a cluster: retries, resources, files in the image, resume, schedules, shared services -------
def emulate(project: Path, manifest: Dict[str, Any]) -> WorkflowEmulator:
    emulator = WorkflowEmulator(
        manifest,
        workdir=project,
        command_prefix=[sys.executable, "-m", "magnus"],
        secrets={("app", "key"): "not-a-real-key"},
    )
    emulator.run()
    return emulator


def argo_run_log(project: Path, run_id: str) -> Any:
    return FileSystemRunLogStore(log_folder=str(project / "mnt" / "logs")).get_run_log_by_id(run_id)


def containers(manifest: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    return {t["name"]: t for t in manifest["spec"]["templates"] if "container" in t}


def test_only_steps_running_user_code_are_retried_and_learn_their_retry_number(
    project: Path, workflow_validator: Any
) -> None:
    config = configure(project, executor__config__retry_strategy={"limit": 2, "retry_policy": "OnFailure"})
    manifest = render(project, "parallel", config)
    assert not list(workflow_validator.iter_errors(manifest))
    retried = {name for name, t in containers(manifest).items() if "retryStrategy" in t}
    # first and both.b.w run python functions; the stub, success/fail nodes and fan-out/in run no user code.
    expected = {dns_name("first"), dns_name("both.b.w")}
    assert retried == expected, sorted(containers(manifest))
    for name, template in containers(manifest).items():
        args = template["container"]["args"]
        if name in expected:
            assert template["retryStrategy"] == {"limit": "2", "retryPolicy": "OnFailure"}
            assert args[args.index("--retry") + 1] == "{{retries}}"
        else:
            assert "--retry" not in args


def test_a_flaky_step_retried_by_argo_records_attempts_1_2_3(project: Path) -> None:
    config = configure(project, executor__config__retry_strategy={"limit": 2})
    emulator = emulate(project, render(project, "flaky", config))
    flaky = next(step for step in emulator.steps if step.template == "flaky")
    assert (flaky.launches, flaky.phase) == (3, "Succeeded")
    run_log = argo_run_log(project, emulator.uid)
    attempts = [(a.attempt_number, a.status) for a in run_log.steps["flaky"].attempts]
    assert attempts == [(1, "FAIL"), (2, "FAIL"), (3, "SUCCESS")]
    assert run_log.status == "SUCCESS"


def test_resources_and_deadlines_only_where_configured(project: Path, workflow_validator: Any) -> None:
    plain = render(project, "map")
    assert "activeDeadlineSeconds" not in plain["spec"]
    for template in containers(plain).values():
        assert "activeDeadlineSeconds" not in template and "retryStrategy" not in template
        assert "resources" not in template["container"]
    PIPELINES["sized"] = dag(
        "a", {"a": task("argo_steps.first", "b", overrides={"argo": "big"}), "b": task("argo_steps.recover")}
    )
    config = configure(
        project,
        executor__config__resources={"requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"memory": "2Gi"}},
        executor__config__max_step_duration_in_seconds=3600,
        executor__config__max_workflow_duration_in_seconds=86400,
        executor__config__overrides__big={
            "resources": {"requests": {"memory": "8Gi"}, "limits": {"memory": "8Gi"}},
            "max_step_duration_in_seconds": 14400,
        },
    )
    sized = render(project, "sized", config)
    assert not list(workflow_validator.iter_errors(sized))
    assert sized["spec"]["activeDeadlineSeconds"] == 86400
    templates = containers(sized)
    assert templates["a"]["container"]["resources"] == {"limits": {"memory": "8Gi"}, "requests": {"memory": "8Gi"}}
    assert templates["a"]["activeDeadlineSeconds"] == "14400"
    assert templates["b"]["container"]["resources"]["requests"] == {"cpu": "500m", "memory": "2Gi"}
    assert templates["b"]["activeDeadlineSeconds"] == "3600"


@pytest.mark.parametrize(
    "option, given",
    [("-c", "{outside}/argo.yaml"), ("-f", "{outside}/linear.yaml"), ("-c", "../argo.yaml")],
)
def test_a_file_the_pods_cannot_find_in_the_image_is_refused_in_one_line(
    project: Path, tmp_path_factory: pytest.TempPathFactory, option: str, given: str
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (project / "linear.yaml").write_text(yaml.safe_dump({"dag": PIPELINES["linear"]}))
    for name in ("argo.yaml", "linear.yaml"):
        (outside / name).write_text((project / name).read_text())
    (project.parent / "argo.yaml").write_text((project / "argo.yaml").read_text())
    files = {"-f": "linear.yaml", "-c": "argo.yaml", "-p": "params.yaml"}
    files[option] = given.format(outside=outside)
    argv = [sys.executable, "-m", "magnus", "execute", *(part for pair in files.items() for part in pair)]
    done = subprocess.run(argv, cwd=project, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"Error: {option} '{files[option]}' is outside the project folder" in done.stderr
    assert "the image, which must hold the project folder as its working directory" in done.stderr
    assert not (project / "argo-pipeline.yaml").exists()


def test_absolute_paths_inside_the_project_are_written_relative(project: Path) -> None:
    (project / "linear.yaml").write_text(yaml.safe_dump({"dag": PIPELINES["linear"]}))
    execute(str(project / "linear.yaml"), str(project / "argo.yaml"), str(project / "params.yaml"))
    manifest = yaml.safe_load((project / "argo-pipeline.yaml").read_text())
    args = containers(manifest)["success"]["container"]["args"]
    assert args[2] == "linear.yaml" and args[args.index("-c") + 1] == "argo.yaml"
    assert str(project) not in json.dumps([t["container"]["args"] for t in containers(manifest).values()])


def test_a_resumed_run_reuses_what_succeeded_and_runs_what_failed(project: Path, workflow_validator: Any) -> None:
    first = emulate(project, render(project, "resumable"))
    old = argo_run_log(project, first.uid)
    assert (old.status, old.steps["gate"].status) == ("FAIL", "FAIL")
    assert (project / "counted").read_text() == "x"

    (project / "open").write_text("")
    (project / "resumable.yaml").write_text(yaml.safe_dump({"dag": PIPELINES["resumable"]}))
    execute("resumable.yaml", "argo.yaml", "params.yaml", use_cached=first.uid)
    manifest = yaml.safe_load((project / "argo-pipeline.yaml").read_text())
    assert not list(workflow_validator.iter_errors(manifest))
    for template in containers(manifest).values():
        args = template["container"]["args"]
        assert args[args.index("--use-cached") + 1] == first.uid
    resumed = emulate(project, manifest)
    new = argo_run_log(project, resumed.uid)
    assert (new.status, new.use_cached, new.original_run_id) == ("SUCCESS", True, first.uid)
    assert (project / "counted").read_text() == "x", "a step that succeeded is not run again"
    reused = f"not executed: succeeded in run {first.uid} (--use-cached)"
    assert new.steps["counted"].mock and new.steps["counted"].message == reused
    assert new.steps["each"].message == reused
    for branch in new.steps["each"].branches.values():
        work = next(step for name, step in branch.steps.items() if name.endswith(".work"))
        assert work.mock and work.message == reused
    assert not new.steps["gate"].mock and new.steps["gate"].status == "SUCCESS"

    # The same resume, walked here, ends the same.
    (project / "open").unlink()
    local_old = execute("resumable.yaml", "local.yaml", "params.yaml", run_id="local-old")
    (project / "open").write_text("")
    local_new = execute("resumable.yaml", "local.yaml", "params.yaml", run_id="local-new", use_cached="local-old")
    assert local_old is not None and local_new is not None
    assert outcome(new) == outcome(local_new) and new.parameters == local_new.parameters


def test_resuming_a_run_the_store_does_not_have_is_refused(project: Path) -> None:
    (project / "linear.yaml").write_text(yaml.safe_dump({"dag": PIPELINES["linear"]}))
    with pytest.raises(UserInputError, match="--use-cached no-such-run"):
        execute("linear.yaml", "argo.yaml", "params.yaml", use_cached="no-such-run")
    assert not (project / "argo-pipeline.yaml").exists()


SCHEDULE = {
    "executor__config__schedule": "0 3 * * *",
    "executor__config__timezone": "Europe/Berlin",
    "executor__config__concurrency_policy": "Forbid",
}


def test_a_schedule_renders_a_cron_workflow_that_runs_as_the_local_run(
    project: Path, cron_workflow_validator: Any
) -> None:
    manifest = render(project, "map", configure(project, **SCHEDULE))
    errors = sorted(cron_workflow_validator.iter_errors(manifest), key=str)
    assert not errors, [f"{list(error.absolute_path)}: {error.message}" for error in errors[:5]]
    again = m.CronWorkflow.model_validate(manifest).model_dump(by_alias=True, exclude_none=True, mode="json")
    assert again == manifest
    assert (manifest["kind"], manifest["metadata"]) == ("CronWorkflow", {"name": "magnus-map"})
    spec = manifest["spec"]
    expected = (["0 3 * * *"], "Europe/Berlin", "Forbid")
    assert (spec["schedules"], spec["timezone"], spec["concurrencyPolicy"]) == expected
    emulator = emulate(project, manifest)
    local = execute("map.yaml", "local.yaml", "params.yaml", run_id="local-map")
    assert local is not None and outcome(argo_run_log(project, emulator.uid)) == outcome(local)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({**SCHEDULE, "executor__config__timezone": "Europe/Atlantis"}, "unknown time zone 'Europe/Atlantis'"),
        ({"executor__config__timezone": "Europe/Berlin"}, "apply to a schedule: set schedule"),
        ({**SCHEDULE, "executor__config__concurrency_policy": "Sometimes"}, "concurrency_policy"),
        ({**SCHEDULE, "executor__config__cron_workflow_name": "Nightly Run"}, "is not a Kubernetes name"),
    ],
)
def test_bad_schedules_are_refused(project: Path, changes: Dict[str, Any], message: str) -> None:
    (project / "linear.yaml").write_text(yaml.safe_dump({"dag": PIPELINES["linear"]}))
    with pytest.raises(ConfigurationError, match=message):
        execute("linear.yaml", configure(project, **changes), "params.yaml")


def test_a_schedule_does_not_resume_one_run(project: Path) -> None:
    (project / "linear.yaml").write_text(yaml.safe_dump({"dag": PIPELINES["linear"]}))
    with pytest.raises(ConfigurationError, match="--use-cached resumes one run"):
        execute("linear.yaml", configure(project, **SCHEDULE), "params.yaml", use_cached="old")


class SharedStore(FileSystemRunLogStore):
    """Stands in for a store other hosts reach (a database server): it declares so, and no folder."""

    service_name: ClassVar[str] = "shared-for-test"

    def reach(self) -> Reach:
        return Reach.ANYWHERE

    def local_paths(self) -> List[str]:
        return []


class HostBoundStore(SharedStore):
    """A store of this machine whose folders it does not name: nothing can mount them."""

    def reach(self) -> Reach:
        return Reach.MACHINE


@pytest.mark.parametrize("store, refused", [(SharedStore, ""), (HostBoundStore, "keeps its state on this machine")])
def test_services_shared_between_hosts_need_no_volume(
    project: Path, monkeypatch: pytest.MonkeyPatch, store: Any, refused: str
) -> None:
    real = entrypoints.create_service

    def create(name: str, block: Dict[str, Any], source: str = "configuration") -> Any:
        return store(log_folder="elsewhere") if name == "run_log_store" else real(name, block, source)

    monkeypatch.setattr(entrypoints, "create_service", create)
    config = configure(project, executor__config__persistent_volumes=[])
    if refused:
        with pytest.raises(ConfigurationError, match=f"run_log_store 'shared-for-test' {refused}"):
            render(project, "linear", config)
        return
    manifest = render(project, "linear", config)
    assert "volumes" not in manifest["spec"]
    assert all("volumeMounts" not in t["container"] for t in containers(manifest).values())


def test_a_cron_workflow_is_submitted_as_one(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _RecordingArgoServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        monkeypatch.setenv("ARGO_TOKEN", "Bearer test-token")
        config = configure(
            project,
            **SCHEDULE,
            executor__config__submit=True,
            executor__config__argo_server_url=url,
            executor__config__namespace="ml",
        )
        render(project, "linear", config)
    finally:
        server.shutdown()
    request = _RecordingArgoServer.requests[-1]
    assert request["path"] == "/api/v1/cron-workflows/ml"
    rendered = yaml.safe_load((project / "argo-pipeline.yaml").read_text())
    assert request["body"]["cronWorkflow"]["spec"] == rendered["spec"]


# ---- text Argo would read as template tags (issue 31, class 13) ----------------------------------------
# Argo fills {{...}} in every string of a template, values it filled in included (see the emulator).
TAGGED = [
    "{{workflow.uid}}",
    "{{workflow.parameters.run_id}} and {{ workflow.name }}",
    "{{=sprig.trim(' evaluated ')}}",
    "{{ never closed",
    "}}{{{a}}}{",
]


def test_the_emulator_fills_tags_as_argo_does(tmp_path: Path) -> None:
    """Argo's rules (util/template, SubstituteParams, substitutePodParams): a tag inside a value is
    filled in turn, an unknown one is kept, {{retries}} is a relaunch's number."""
    show = "import json, os, sys; print(json.dumps([sys.argv[1:], os.environ['SAID']]))"
    template = {
        "name": "show",
        "inputs": {"parameters": [{"name": "text"}]},
        "retryStrategy": {"limit": "1"},
        "container": {
            "image": "python",
            "command": [sys.executable, "-c", show],
            "args": ["{{inputs.parameters.text}}", "s{{retries}}", "{{user.name}}", "{{workflow.parameters.said}}"],
            "env": [{"name": "SAID", "value": "{{workflow.parameters.said}}"}],
        },
    }
    task = {
        "name": "show",
        "template": "show",
        "arguments": {"parameters": [{"name": "text", "value": "{{workflow.name}}"}]},
    }
    arguments = [
        {"name": "run_id", "value": "{{workflow.uid}}"},
        {"name": "said", "value": "{{workflow.parameters.run_id}}!"},
    ]
    manifest = {
        "kind": "Workflow",
        "spec": {
            "entrypoint": "main",
            "arguments": {"parameters": arguments},
            "templates": [{"name": "main", "dag": {"tasks": [task]}}, template],
        },
    }
    emulator = WorkflowEmulator(manifest, workdir=tmp_path)
    assert emulator.run() == "Succeeded"
    args, said = json.loads(emulator.steps[0].output)
    assert args == [emulator.name, "s0", "{{user.name}}", f"{emulator.uid}!"]
    assert said == f"{emulator.uid}!"

    for value, refused in [("{{ never closed", "cannot find the end tag"), ("{{=1 + 1}}", "expression tag")]:
        arguments[1]["value"] = value
        with pytest.raises(TemplateTagError, match=refused):
            WorkflowEmulator(manifest, workdir=tmp_path).run()
    template["container"]["args"] = ["{{workflow.parameters.nope}}"]
    with pytest.raises(TemplateTagError, match=r"template show: failed to resolve \{\{workflow.parameters.nope\}\}"):
        WorkflowEmulator(manifest, workdir=tmp_path)


def test_parameter_values_reach_the_steps_as_written(project: Path, workflow_validator: Any) -> None:
    parameters = {"x": 1, "items": [1], "said": TAGGED, "keyed": {"{{workflow.uid}}": "}}"}}
    (project / "params.yaml").write_text(yaml.safe_dump(parameters))
    manifest = render(project, "linear")
    assert not list(workflow_validator.iter_errors(manifest))
    assert m.Workflow.model_validate(manifest).model_dump(by_alias=True, exclude_none=True, mode="json") == manifest
    assert not [p for p in manifest["spec"]["arguments"]["parameters"] if "{{" in p["value"] and p["name"] != "run_id"]
    emulator = emulate(project, manifest)
    argo = argo_run_log(project, emulator.uid)
    local = execute("linear.yaml", "local.yaml", "params.yaml", run_id="local-tagged")
    assert local is not None and argo.status == local.status == "SUCCESS"
    assert argo.parameters == local.parameters
    assert (argo.parameters["said"], argo.parameters["keyed"]) == (TAGGED, parameters["keyed"])
    assert argo.parameters["from_shell"] == 2


def test_map_values_reach_their_branches_as_written(project: Path) -> None:
    PIPELINES["map_of_tags"] = dag(
        "each", {"each": {**MAP, "iterate_as": "text", "branch": dag("say", {"say": task("argo_steps.said")})}}
    )
    (project / "params.yaml").write_text(yaml.safe_dump({"items": TAGGED}))
    emulator = emulate(project, render(project, "map_of_tags"))
    argo = argo_run_log(project, emulator.uid)
    local = execute("map_of_tags.yaml", "local.yaml", "params.yaml", run_id="local-map-of-tags")
    assert local is not None and local.status == "SUCCESS"
    assert outcome(argo) == outcome(local), [step.output[-600:] for step in emulator.steps if step.phase == "Failed"]
    assert argo.status == "SUCCESS"


def refused(project: Path, *argv: str) -> str:
    """Run ``magnus execute`` as a user does; it must be refused in one line (exit 2), rendering nothing."""
    command = [sys.executable, "-m", "magnus", "execute", "-c", "argo.yaml", "-p", "params.yaml", *argv]
    done = subprocess.run(command, cwd=project, capture_output=True, text=True)
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not done.stdout, done.stdout + done.stderr
    assert not (project / "argo-pipeline.yaml").exists()
    return done.stderr.strip()


@pytest.mark.parametrize(
    "steps, start, message",
    [
        ({"s{{retries}}": task("argo_steps.recover")}, "s{{retries}}", "step 's{{retries}}': must not contain '{{'"),
        ({"a}}b": {"type": "stub", "next": "success"}}, "a}}b", "step 'a}}b': must not contain '}}'"),
        (
            {
                "p": {
                    "type": "parallel",
                    "next": "success",
                    "branches": {"b{{pod}}": dag("w", {"w": task("x.y")})},
                }
            },
            "p",
            "branch 'p.b{{pod}}': must not contain '{{' or '}}'",
        ),
    ],
)
def test_a_step_name_argo_would_read_as_a_tag_is_refused(
    project: Path, steps: Dict[str, Any], start: str, message: str
) -> None:
    (project / "tagged.yaml").write_text(yaml.safe_dump({"dag": dag(start, steps)}))
    error = refused(project, "-f", "tagged.yaml")
    assert error.startswith(f"Error: tagged.yaml: {message}") and "Argo would read a template tag" in error


@pytest.mark.parametrize(
    "name, message",
    [
        ("a{{b}}", "parameter 'a{{b}}': Argo names workflow parameters with letters, digits, '_' and '-' only"),
        ("my.param", "parameter 'my.param': Argo names workflow parameters with letters, digits, '_' and '-' only"),
        ("run_id", "parameter 'run_id': the workflow's own argument 'run_id' carries the run id"),
    ],
)
def test_a_parameter_name_argo_cannot_carry_is_refused(project: Path, name: str, message: str) -> None:
    (project / "linear.yaml").write_text(yaml.safe_dump({"dag": PIPELINES["linear"]}))
    (project / "params.yaml").write_text(yaml.safe_dump({"x": 1, name: "value"}))
    assert refused(project, "-f", "linear.yaml") == (
        f"Error: {message}; rename it, or set executor.config.expose_parameters_as_inputs: false"
    )
    # Read from the parameters file in the image instead, the name is no workflow parameter's.
    render(project, "linear", configure(project, executor__config__expose_parameters_as_inputs=False))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--tag", "{{workflow.name}}"], "--tag '{{workflow.name}}'"),
        (["--use-cached", "old{{retries}}"], "--use-cached 'old{{retries}}'"),
        (["-f", "p{{workflow.uid}}.yaml"], "-f 'p{{workflow.uid}}.yaml'"),
    ],
)
def test_a_word_of_the_pods_command_line_argo_would_read_as_a_tag_is_refused(
    project: Path, argv: List[str], message: str
) -> None:
    pipeline = "p{{workflow.uid}}.yaml" if "-f" in argv else "linear.yaml"
    (project / pipeline).write_text(yaml.safe_dump({"dag": PIPELINES["linear"]}))
    arguments = argv if "-f" in argv else ["-f", pipeline, *argv]
    assert (
        refused(project, *arguments)
        == f"Error: {message}: must not contain '{{{{' or '}}}}': Argo would read a template tag there"
    )


def test_quiet_prints_nothing_and_otherwise_progress_tells_where_the_manifest_went(project: Path) -> None:
    """``-q``: errors only (issue 31); without it the line goes with the progress, on stderr."""
    (project / "linear.yaml").write_text(yaml.safe_dump({"dag": PIPELINES["linear"]}))
    command = [sys.executable, "-m", "magnus", "execute", "-f", "linear.yaml", "-c", "argo.yaml", "-p", "params.yaml"]
    quiet = subprocess.run([*command, "-q"], cwd=project, capture_output=True, text=True)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    assert (project / "argo-pipeline.yaml").exists()
    shown = subprocess.run(command, cwd=project, capture_output=True, text=True)
    assert (shown.returncode, shown.stdout) == (0, "")
    assert shown.stderr.splitlines()[0] == "Argo Workflow manifest written to argo-pipeline.yaml"


def _template(manifest: Dict[str, Any], prefix: str) -> Dict[str, Any]:
    return next(t for t in manifest["spec"]["templates"] if t["name"].startswith(prefix))


def test_a_conditional_runs_the_chosen_branch_by_when_and_its_fan_in_accepts_those_skipped(project: Path) -> None:
    manifest = render(project, "conditional")
    tasks = {task["name"]: task for task in _template(manifest, "magnus-dag")["dag"]["tasks"]}
    chosen = "{{tasks.choose-fan-out.outputs.parameters.branch}}"
    branches = [task for name, task in tasks.items() if name.startswith("choose-") and "when" in task]
    assert sorted(task["when"] for task in branches) == sorted(
        f"'{chosen}' == '{label}'" for label in ("1", "2", "default")
    )
    assert all(f"{task['name']}.Skipped" in tasks["choose-fan-in"]["depends"] for task in branches)
    fan_out = _template(manifest, "choose-fan-out")
    assert fan_out["outputs"]["parameters"][0]["name"] == "branch"
    emulator = emulate(project, manifest)
    ran = {step.template for step in emulator.steps}
    assert any(name.startswith("choose-1") for name in ran) and not any(name.startswith("choose-2") for name in ran)


def test_a_loop_is_a_recursive_template_whose_decision_core_makes(project: Path) -> None:
    manifest = render(project, "loop")
    iteration = next(t for t in manifest["spec"]["templates"] if t["name"].startswith("repeat-iteration"))
    body, decide, again = iteration["dag"]["tasks"]
    assert (body["name"], decide["depends"], again["depends"]) == ("body", "body.Succeeded", "next.Succeeded")
    assert again["template"] == iteration["name"], "the next iteration is the same template"
    assert again["withParam"] == "{{tasks.next.outputs.parameters.iterations}}"
    args = _template(manifest, "repeat-fan-next")["container"]["args"]
    assert args[:6] == ["fan", "{{workflow.parameters.run_id}}", "repeat", "-f", "loop.yaml", "-m"] and "next" in args
    emulator = emulate(project, manifest)
    decisions = [step for step in emulator.steps if step.template.startswith("repeat-fan-next")]
    assert [step.phase for step in decisions] == ["Succeeded"] * 3  # after iterations 0, 1 and 2
    run_log = argo_run_log(project, emulator.uid)
    assert list(run_log.steps["repeat"].branches) == ["repeat.0", "repeat.1", "repeat.2"]
    assert run_log.steps["repeat"].message == "stopped after iteration 2: done is true"


def test_a_conditional_branch_name_argo_cannot_compare_is_refused(project: Path) -> None:
    pipeline = {"dag": dag("choose", {"choose": {**CONDITIONAL, "branches": {"it's": dag("w", {"w": task("x.y")})}}})}
    (project / "quoted.yaml").write_text(yaml.safe_dump(pipeline))
    result = subprocess.run(
        [sys.executable, "-m", "magnus", "execute", "-f", "quoted.yaml", "-c", "argo.yaml", "-p", "params.yaml"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "Error: branch 'it's': Argo cannot compare a branch name holding a quote; rename it"
    ]
