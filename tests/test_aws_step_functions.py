"""The aws-step-functions executor end to end: moto interprets the state machine, podman runs each Batch job.

No AWS account is reachable here, so the real control flow runs on moto's server
(:mod:`magnus_executor_aws.testing`): ``magnus execute -c aws.yaml`` registers the job definitions,
creates the state machine and starts an execution; moto's States Language interpreter walks it and
runs every ``batch:submitJob.sync`` as a real container of the step image (this checkout's wheels
and the project folder), which runs ``magnus execute_single_node`` / ``magnus fan`` against the run
log (chunked-fs) and the catalog (fsspec) in moto's S3. The run log read back from S3 is compared
with a local run's of the same pipeline, on the same kind of stores.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import yaml

from magnus.testing.pipelines import dag, task
from magnus_executor_aws.testing import Emulator, project_image, runtime_image, start_emulator

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ROOT / "packages"
_prefixes = itertools.count()

pytestmark = [pytest.mark.service, pytest.mark.slow]


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    started = start_emulator()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def runtime(emulator: Emulator) -> str:
    """The step image's runtime: magnus-core, this executor and the S3 stores, from this checkout."""
    requirements = [
        str(PACKAGES / "magnus-core"),
        str(PACKAGES / "magnus-executor-aws"),
        str(PACKAGES / "magnus-runlog-chunked"),
        str(PACKAGES / "magnus-catalog-fsspec"),
        "s3fs",  # the [s3] extras, named apart: the pip of Python 3.11's venv cannot resolve a path with extras
    ]
    names = ["magnus-core", "magnus-executor-aws", "magnus-runlog-chunked", "magnus-catalog-fsspec", "s3fs"]
    return runtime_image(ROOT, requirements, names)


class Project:
    """A project folder with the examples, configs for AWS and for a local run, and its image."""

    def __init__(self, folder: Path, emulator: Emulator, runtime: str, name: str) -> None:
        self.folder = folder
        self.emulator = emulator
        self.runtime = runtime
        self.prefix = f"s3://{emulator.bucket}/{name}-{next(_prefixes)}"
        self.image = f"localhost/magnus-aws-project:{name.lower()[:60]}"
        shutil.copytree(ROOT / "examples", folder / "examples", ignore=shutil.ignore_patterns("__pycache__"))

    def stores(self, where: str) -> Dict[str, Any]:
        return {
            "run_log_store": {"type": "chunked-fs", "config": {"log_folder": f"{self.prefix}/{where}/run-logs"}},
            "catalog": {"type": "fsspec", "config": {"location": f"{self.prefix}/{where}/catalog"}},
        }

    def write_configs(self, secrets: Any = None, name: str = "aws", **executor: Any) -> None:
        config = {
            "job_queue": self.emulator.job_queue,
            "image": self.image,
            "region": self.emulator.region,
            "role_arn": self.emulator.role_arn,
            "iterations_location": f"{self.prefix}/items",
            "environment": self.emulator.environment(),
            "poll_seconds": 1,
            "memory": 512,
            **executor,
        }
        aws = {"executor": {"type": "aws-step-functions", "config": config}, **self.stores("aws")}
        if secrets:
            aws["secrets"] = secrets
        (self.folder / f"{name}.yaml").write_text(yaml.safe_dump(aws, sort_keys=False))
        (self.folder / "local.yaml").write_text(yaml.safe_dump({"executor": {"type": "local"}, **self.stores("local")}))

    def build(self, *files: str) -> None:
        project_image(self.runtime, self.folder, ["examples", *(files or ["aws.yaml"])], self.image)

    def magnus(self, *args: str) -> "subprocess.CompletedProcess[str]":
        environment = {**os.environ, **self.emulator.environment()}
        return subprocess.run(
            [sys.executable, "-m", "magnus", *args],
            cwd=self.folder,
            capture_output=True,
            text=True,
            env=environment,
            timeout=900,
        )

    def started(self, pipeline: str, run_id: str, step: str) -> "Tuple[subprocess.Popen[bytes], Path]":
        """``magnus execute -f pipeline -c aws.yaml`` in its own process, once its progress told ``step``
        started; the process and the file its progress goes to."""
        import time

        errors = self.folder / f"{run_id}.stderr"
        with errors.open("w") as stream:  # the process writes through its own copy
            running = subprocess.Popen(
                [sys.executable, "-m", "magnus", "execute", "-f", pipeline, "-c", "aws.yaml", "--run-id", run_id],
                cwd=self.folder,
                stdout=subprocess.DEVNULL,
                stderr=stream,
                env={**os.environ, **self.emulator.environment()},
            )
        deadline = time.monotonic() + 120
        while f"{step} started" not in errors.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert f"{step} started" in errors.read_text(), errors.read_text()
        return running, errors

    def run_log(self, where: str, run_id: str) -> Dict[str, Any]:
        """The run log as the store in S3 holds it (read with the store's own reader)."""
        shown = self.magnus("runs", "show", run_id, "-c", f"{where}.yaml", "--json")
        assert shown.returncode == 0, shown.stderr
        document: Dict[str, Any] = json.loads(shown.stdout)
        return document

    def catalog_files(self, where: str, run_id: str) -> List[str]:
        bucket, _, prefix = f"{self.prefix}/{where}/catalog/{run_id}/"[len("s3://") :].partition("/")
        client = self.emulator.client("s3")
        found = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        return sorted(item["Key"][len(prefix) :] for item in found)


def _steps(run_log: Dict[str, Any]) -> List[Tuple[str, str]]:
    """Every step of a run log, nested ones included, with its status."""
    found: List[Tuple[str, str]] = []

    def walk(steps: Dict[str, Any]) -> None:
        for step in steps.values():
            found.append((step["internal_name"], step["status"]))
            for branch in step.get("branches", {}).values():
                walk(branch["steps"])

    walk(run_log["steps"])
    return sorted(found)


@pytest.fixture
def project(tmp_path: Path, emulator: Emulator, runtime: str, request: pytest.FixtureRequest) -> Project:
    return Project(tmp_path, emulator, runtime, request.node.name.replace("_", "-"))


def test_the_example_pipeline_runs_as_a_local_run_does(project: Project) -> None:
    """examples/pipeline.yaml (tasks, shell, stub, parallel, map, nested dag) on Step Functions + Batch."""
    project.write_configs()
    project.build()
    common = ["-f", "examples/pipeline.yaml", "-p", "examples/parameters.yaml"]
    local = project.magnus("execute", *common, "-c", "local.yaml", "--run-id", "local-run")
    assert local.returncode == 0, local.stderr
    done = project.magnus("execute", *common, "-c", "aws.yaml", "--run-id", "aws-run")
    assert done.returncode == 0, done.stdout + done.stderr
    # the progress of a local run: a line per step of the pipeline, the summary
    for line in ("prepare SUCCESS", "process SUCCESS", "train SUCCESS", "evaluate SUCCESS", "report SUCCESS"):
        assert line in done.stderr, done.stderr
    assert "run aws-run SUCCESS" in done.stderr
    on_aws, here = project.run_log("aws", "aws-run"), project.run_log("local", "local-run")
    assert on_aws["status"] == here["status"] == "SUCCESS"
    assert _steps(on_aws) == _steps(here)
    assert on_aws["parameters"] == here["parameters"]
    assert project.catalog_files("aws", "aws-run") == project.catalog_files("local", "local-run")


STEPS = """
import hashlib
import os

import boto3

import magnus

BUCKET = os.environ["MAGNUS_TEST_BUCKET"]
PREFIX = os.environ["MAGNUS_TEST_PREFIX"]


def prepare() -> dict:
    return {"prepared": 1}


def broken() -> None:
    raise RuntimeError("broken on purpose")


def read_secret() -> None:
    value = magnus.get_secret("API_KEY")
    assert hashlib.sha256(value.encode()).hexdigest() == os.environ["EXPECTED_SECRET_SHA"]
    print("the secret is", value)  # masked in the step's execution log


def flaky() -> None:
    \"\"\"Fails on its first two launches in a run, succeeds on the third (a count kept in S3).\"\"\"
    client, key = boto3.client("s3"), f"{PREFIX}/flaky/{magnus.get_run_id()}"
    try:
        count = int(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    except client.exceptions.NoSuchKey:
        count = 0
    client.put_object(Bucket=BUCKET, Key=key, Body=str(count + 1).encode())
    if count < 2:
        raise RuntimeError(f"launch {count + 1} fails")


def gate() -> None:
    client = boto3.client("s3")
    if client.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/gate-closed").get("KeyCount"):
        raise RuntimeError("the gate is closed")
"""


def _task(command: str, following: str, **fields: Any) -> Dict[str, Any]:
    return {"type": "task", "command": command, "next": following, **fields}


FAILING = {
    "start_at": "prepare",
    "steps": {
        "prepare": _task("aws_steps.prepare", "broken"),
        "broken": _task("aws_steps.broken", "success", on_failure="recover"),
        "recover": {"type": "task", "command_type": "shell", "command": "echo recovering", "next": "fail"},
        "success": {"type": "success"},
        "fail": {"type": "fail"},
    },
}
CHECKS = {
    "start_at": "secret",
    "steps": {
        "secret": _task("aws_steps.read_secret", "flaky"),
        "flaky": _task("aws_steps.flaky", "gate"),
        "gate": _task("aws_steps.gate", "success", overrides={"aws-step-functions": "once"}),
        "success": {"type": "success"},
        "fail": {"type": "fail"},
    },
}
SECRET = "s3cr3t-aws-9d1c"


def _with_steps(project: Project, **pipelines: Dict[str, Any]) -> Dict[str, str]:
    """The steps module and ``pipelines`` written into the project; the environment its steps read."""
    (project.folder / "aws_steps.py").write_text(STEPS)
    for name, steps in pipelines.items():
        (project.folder / f"{name}.yaml").write_text(yaml.safe_dump({"dag": steps}))
    bucket, _, prefix = project.prefix[len("s3://") :].partition("/")
    import hashlib

    return {
        "MAGNUS_TEST_BUCKET": bucket,
        "MAGNUS_TEST_PREFIX": prefix,
        "EXPECTED_SECRET_SHA": hashlib.sha256(SECRET.encode()).hexdigest(),
    }


def test_a_failing_step_routes_to_on_failure_and_the_run_fails_as_a_local_run_does(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    variables = _with_steps(project, failing=FAILING)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)  # the local run's steps read them too
    project.write_configs(environment={**project.emulator.environment(), **variables})
    project.build("aws.yaml", "aws_steps.py", "failing.yaml")
    local = project.magnus("execute", "-f", "failing.yaml", "-c", "local.yaml", "--run-id", "local-fail")
    assert local.returncode == 1, local.stderr
    done = project.magnus("execute", "-f", "failing.yaml", "-c", "aws.yaml", "--run-id", "aws-fail")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "broken FAIL" in done.stderr and "recover SUCCESS" in done.stderr
    assert "run aws-fail FAIL" in done.stderr
    assert "resume with:" in done.stderr and "--use-cached aws-fail" in done.stderr
    on_aws, here = project.run_log("aws", "aws-fail"), project.run_log("local", "local-fail")
    assert on_aws["status"] == here["status"] == "FAIL"
    assert _steps(on_aws) == _steps(here)
    assert on_aws["parameters"] == here["parameters"] == {"prepared": 1}
    assert on_aws["steps"]["broken"]["message"] == here["steps"]["broken"]["message"]


def test_retries_use_cached_wait_false_and_a_secret(project: Project) -> None:
    """Run 1: the secret reaches its step, a flaky step's job is relaunched by Step Functions (attempts
    1, 2, 3), the gate fails. Run 2 (``--use-cached``, ``wait: false``): what succeeded is reused, the gate
    passes; ``magnus runs show`` follows it. The secret is nowhere but in the step."""
    variables = _with_steps(project, checks=CHECKS)
    secrets_manager = project.emulator.client("secretsmanager")
    name = project.prefix.rsplit("/", 1)[-1]
    secrets_manager.create_secret(Name=f"{name}/API_KEY", SecretString=SECRET)
    common: Dict[str, Any] = {
        "environment": {**project.emulator.environment(), **variables},
        "retry": {"max_attempts": 2, "interval_seconds": 1, "backoff_rate": 1.0},
        "overrides": {"once": {"retry": {"max_attempts": 0}}},
        "secrets": {"type": "aws-secrets-manager", "config": {"prefix": f"{name}/"}},
    }
    project.write_configs(**common)
    project.write_configs(name="aws-nowait", wait=False, **common)
    project.build("aws.yaml", "aws-nowait.yaml", "aws_steps.py", "checks.yaml")
    s3 = project.emulator.client("s3")
    s3.put_object(
        Bucket=variables["MAGNUS_TEST_BUCKET"], Key=f"{variables['MAGNUS_TEST_PREFIX']}/gate-closed", Body=b""
    )

    first = project.magnus("execute", "-f", "checks.yaml", "-c", "aws.yaml", "--run-id", "first")
    assert first.returncode == 1, first.stdout + first.stderr
    run_log = project.run_log("aws", "first")
    assert run_log["steps"]["secret"]["status"] == "SUCCESS", "the secret reached its step, with its value"
    flaky = run_log["steps"]["flaky"]
    assert flaky["status"] == "SUCCESS"
    assert [(a["attempt_number"], a["status"]) for a in flaky["attempts"]] == [(1, "FAIL"), (2, "FAIL"), (3, "SUCCESS")]
    assert run_log["steps"]["gate"]["status"] == "FAIL"
    assert len(run_log["steps"]["gate"]["attempts"]) == 1, "overrides: once relaunches nothing"

    s3.delete_object(Bucket=variables["MAGNUS_TEST_BUCKET"], Key=f"{variables['MAGNUS_TEST_PREFIX']}/gate-closed")
    second = project.magnus(
        "execute", "-f", "checks.yaml", "-c", "aws-nowait.yaml", "--run-id", "second", "--use-cached", "first"
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert "arn:aws:states:" in second.stdout + second.stderr
    assert "magnus runs show second -c aws-nowait.yaml" in second.stdout + second.stderr
    import time

    deadline = time.monotonic() + 300
    while True:
        shown = project.run_log("aws", "second")
        if shown["status"] in ("SUCCESS", "FAIL") or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert shown["status"] == "SUCCESS"
    assert shown["steps"]["secret"]["mock"] and shown["steps"]["flaky"]["mock"], "reused from the first run"
    assert "not executed: succeeded in run first" in shown["steps"]["flaky"]["message"]
    assert not shown["steps"]["gate"]["mock"] and shown["steps"]["gate"]["status"] == "SUCCESS"

    # the secret's value is nowhere but in the step that read it
    sfn = project.emulator.client("stepfunctions")
    machines = sfn.list_state_machines()["stateMachines"]
    definitions = [sfn.describe_state_machine(stateMachineArn=m["stateMachineArn"])["definition"] for m in machines]
    batch = project.emulator.client("batch")
    job_definitions = json.dumps(batch.describe_job_definitions()["jobDefinitions"], default=str)
    everything = [first.stdout, first.stderr, second.stdout, second.stderr, json.dumps(run_log), json.dumps(shown)]
    everything += [*definitions, job_definitions]
    for key in project.emulator.client("s3").list_objects_v2(Bucket=project.emulator.bucket).get("Contents", []):
        everything.append(
            s3.get_object(Bucket=project.emulator.bucket, Key=key["Key"])["Body"].read().decode(errors="replace")
        )
    assert not [text for text in everything if SECRET in text]


# Long enough that the interrupt always comes while the step runs, however slowly its job started.
SLOW = dag("sleepy", {"sleepy": task("sleep 120", command_type="shell")})


def test_ctrl_c_stops_the_execution_and_records_the_run_interrupted(project: Project) -> None:
    import signal

    (project.folder / "slow.yaml").write_text(yaml.safe_dump({"dag": SLOW}))
    project.write_configs()
    project.build("aws.yaml", "slow.yaml")
    running, errors = project.started("slow.yaml", "stopped", "sleepy")
    running.send_signal(signal.SIGINT)
    assert running.wait(60) == 130, errors.read_text()
    said = errors.read_text()
    assert "Error: interrupted\n" in said and "sleepy FAIL" in said, said
    assert "run stopped FAIL (interrupted)" in said
    run_log = project.run_log("aws", "stopped")
    assert run_log["status"] == "FAIL"
    assert run_log["steps"]["sleepy"]["status"] == "FAIL" and run_log["steps"]["sleepy"]["message"] == "interrupted"
    sfn = project.emulator.client("stepfunctions")
    machine = next(m for m in sfn.list_state_machines()["stateMachines"] if m["name"] == "magnus-slow")
    executions = sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
    assert [(e["name"], e["status"]) for e in executions] == [("stopped", "ABORTED")]


HANGS = dag("hangs", {"hangs": task("sleep 600", command_type="shell")})


def test_a_job_killed_before_its_step_recorded_its_end_fails_the_step_saying_so(project: Project) -> None:
    """Batch terminates the job mid-step (as a Spot reclaim would): its container is killed, the step never
    records its end; Step Functions routes to the fail node, and the follower records the step FAIL."""

    (project.folder / "hangs.yaml").write_text(yaml.safe_dump({"dag": HANGS}))
    project.write_configs()
    project.build("aws.yaml", "hangs.yaml")
    running, errors = project.started("hangs.yaml", "killed", "hangs")
    batch = project.emulator.client("batch")
    running_jobs = batch.list_jobs(jobQueue=project.emulator.job_queue, jobStatus="RUNNING")["jobSummaryList"]
    jobs = [job for job in running_jobs if job["jobName"] == "hangs"]  # the emulator is the module's
    assert len(jobs) == 1, running_jobs
    batch.terminate_job(jobId=jobs[0]["jobId"], reason="Host EC2 (instance i-0) terminated.")
    assert running.wait(300) == 1, errors.read_text()
    said = errors.read_text()
    assert "step hangs: its AWS Batch job ended before the step recorded its end" in said, said
    run_log = project.run_log("aws", "killed")
    assert run_log["status"] == "FAIL"
    hangs = run_log["steps"]["hangs"]
    assert hangs["status"] == "FAIL", hangs
    assert hangs["message"].startswith("its AWS Batch job ended before the step recorded its end"), hangs["message"]
    assert "get-execution-history --execution-arn " in hangs["message"]


def test_a_conditional_runs_the_branch_it_chose_as_a_local_run_does(project: Project) -> None:
    """examples/concepts/conditional.yaml: the fan-out writes its choice to S3, a Choice state runs that branch."""
    project.write_configs()
    project.build()
    pipeline = ["-f", "examples/concepts/conditional.yaml"]
    local = project.magnus("execute", *pipeline, "-c", "local.yaml", "--run-id", "local-choice")
    assert local.returncode == 0, local.stderr
    done = project.magnus("execute", *pipeline, "-c", "aws.yaml", "--run-id", "aws-choice")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "route SUCCESS" in done.stderr, done.stderr
    on_aws, here = project.run_log("aws", "aws-choice"), project.run_log("local", "local-choice")
    assert _steps(on_aws) == _steps(here)
    assert on_aws["parameters"] == here["parameters"] and on_aws["parameters"]["trained_with"] == "one process"
    assert on_aws["steps"]["route"]["message"] == here["steps"]["route"]["message"]


def test_a_loop_runs_its_iterations_until_it_is_told_to_stop_as_a_local_run_does(project: Project) -> None:
    """examples/concepts/loop.yaml: a cycle of states walks each iteration core decides, then leaves."""
    project.write_configs()
    project.build()
    pipeline = ["-f", "examples/concepts/loop.yaml"]
    local = project.magnus("execute", *pipeline, "-c", "local.yaml", "--run-id", "local-loop")
    assert local.returncode == 0, local.stderr
    done = project.magnus("execute", *pipeline, "-c", "aws.yaml", "--run-id", "aws-loop")
    assert done.returncode == 0, done.stdout + done.stderr
    on_aws, here = project.run_log("aws", "aws-loop"), project.run_log("local", "local-loop")
    assert _steps(on_aws) == _steps(here)
    assert len(on_aws["steps"]["train until good"]["branches"]) == 3  # accuracy 0.6, 0.7, 0.8: good enough
    assert on_aws["parameters"] == here["parameters"] and on_aws["parameters"]["good_enough"] is True
    assert on_aws["steps"]["train until good"]["message"] == here["steps"]["train until good"]["message"]
