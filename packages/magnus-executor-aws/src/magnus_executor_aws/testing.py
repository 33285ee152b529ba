"""AWS Step Functions and Batch on this machine, for tests and benchmarks: moto's server and podman.

No AWS account is reachable from the tests, so they run the real control flow on moto (a test
dependency, imported here only when used):

- :func:`start_emulator` starts moto's server on ``127.0.0.1`` and a free port in this process,
  asks it to interpret state machines (``stepfunctions: {execute_state_machine: true}``) and to run
  every Batch job as a real container (``batch: {use_docker: true}``) through podman's Docker API
  (a socket of its own, unless ``DOCKER_HOST`` is set), with host networking so the jobs reach
  moto's S3 on ``127.0.0.1``. It makes what a real account's administrator would: a role, an
  unmanaged compute environment, a job queue, a bucket.
- :func:`step_image` builds the image of the steps once per machine and content: the local base
  image (``scripts/base_image.py``) with wheels of this checkout's packages installed, then a thin
  layer holding a project folder as the working directory (what a user's image is).

The emulator's gaps, corrected here and nowhere else (:func:`correct_emulator`); what
magnus renders is never bent to the emulator:

1. moto 5.2's ``batch:submitJob.sync`` integration hands the state's PascalCase parameters
   (``JobName``, ``JobQueue``, ``ContainerOverrides``) to boto unchanged and fails with
   ``KeyError: 'JobName'``, where AWS maps them to the Batch API's camelCase names. The patch maps
   parameters to camelCase (recursively) and the job description back to PascalCase, as AWS does.
2. A ``Retry`` of a ``.sync`` Task state reuses the callback endpoint of the state's first attempt,
   which that attempt closed when it ended: every relaunch "times out" (``States.Timeout``) the
   moment its job is submitted, while the job runs on. AWS waits for each relaunched job. The patch
   gives each attempt an endpoint of its own (a new task token), as the first attempt has.
3. Its ``aws-sdk:s3:getObject`` task hands on boto's unread stream as ``Body`` (and fails to copy
   it), where AWS returns the object's text. The patch reads it into text.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional

REGION = "us-east-1"
JOB_QUEUE = "magnus-queue"
BUCKET = "magnus-aws-tests"


@dataclasses.dataclass
class Emulator:
    """moto's server as Step Functions, Batch, S3 and Secrets Manager, and what was made in it."""

    endpoint_url: str
    role_arn: str
    job_queue: str = JOB_QUEUE
    bucket: str = BUCKET
    region: str = REGION
    access_key_id: str = "magnus-testing"
    secret_access_key: str = "magnus-testing-secret"
    stop: Callable[[], None] = lambda: None

    def environment(self) -> Dict[str, str]:
        """The standard AWS variables pointing boto3, s3fs and the jobs at the emulator (dummy keys)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        )


def _convert(value: Any, key: Callable[[str], str]) -> Any:
    if isinstance(value, dict):
        return {key(name): _convert(item, key) for name, item in value.items()}
    if isinstance(value, list):
        return [_convert(item, key) for item in value]
    return value


def correct_emulator() -> None:
    """Make moto's ``batch:submitJob.sync`` map parameters and wait for retried jobs, and its
    ``aws-sdk:s3:getObject`` return text, as AWS does (see the module's docstring)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_batch as batch,
    )

    def parameters(self: Any, parameters: Dict[str, Any], *args: Any, **kwargs: Any) -> None:
        camel = _convert(parameters, lambda name: name[:1].lower() + name[1:])
        parameters.clear()
        parameters.update(camel)

    def response(self: Any, response: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(response, dict):
            pascal = _convert(response, lambda name: name[:1].upper() + name[1:])
            response.clear()
            response.update(pascal)

    waits = batch.StateTaskServiceBatch._eval_integration_pattern

    def each_attempt_waits(self: Any, env: Any, *args: Any, **kwargs: Any) -> Any:
        env.callback_pool_manager.add(env.states.context_object.update_task_token())
        return waits(self, env, *args, **kwargs)

    setattr(batch.StateTaskServiceBatch, "_normalise_parameters", parameters)  # noqa: B010 - a patch
    setattr(batch.StateTaskServiceBatch, "_normalise_response", response)  # noqa: B010 - a patch
    if getattr(waits, "__name__", "") != each_attempt_waits.__name__:  # once per process
        setattr(batch.StateTaskServiceBatch, "_eval_integration_pattern", each_attempt_waits)  # noqa: B010
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as sdk,
    )

    calls = sdk.StateTaskServiceAwsSdk._eval_service_task

    def body_as_text(self: Any, env: Any, *args: Any, **kwargs: Any) -> Any:
        calls(self, env, *args, **kwargs)
        response = env.stack[-1]
        if isinstance(response, dict) and hasattr(response.get("Body"), "read"):
            response["Body"] = response["Body"].read().decode()

    if getattr(calls, "__name__", "") != body_as_text.__name__:  # once per process
        setattr(sdk.StateTaskServiceAwsSdk, "_eval_service_task", body_as_text)  # noqa: B010


def _podman_socket() -> Optional[subprocess.Popen[bytes]]:
    """Start podman's Docker API on a socket of our own (unless DOCKER_HOST is set); the process."""
    if os.environ.get("DOCKER_HOST"):
        return None
    if shutil.which("podman") is None:
        raise RuntimeError("podman is not installed: apt-get install podman runc debootstrap (.ci/run does)")
    socket = Path(tempfile.mkdtemp(prefix="magnus-aws-podman-")) / "podman.sock"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while not socket.exists():
        if service.poll() is not None or time.monotonic() > deadline:
            stderr = service.stderr.read().decode() if service.stderr else ""
            raise RuntimeError(f"podman's API service did not start: {stderr[-800:]}")
        time.sleep(0.2)
    os.environ["DOCKER_HOST"] = f"unix://{socket}"
    return service


def start_emulator(run_jobs: bool = True) -> Emulator:
    """moto's server with Step Functions executing state machines and Batch running containers
    (``run_jobs``; else no container engine is needed, and state machines are not executed)."""
    import requests

    from magnus.testing.s3 import serve_moto

    podman = _podman_socket() if run_jobs else None
    os.environ["MOTO_DOCKER_NETWORK_MODE"] = "host"  # the job containers reach moto on 127.0.0.1
    # One request at a time, as for magnus.testing.s3: S3's conditional puts are atomic there.
    endpoint, stop_server = serve_moto()
    os.environ["MOTO_PORT"] = endpoint.rsplit(":", 1)[1]  # where moto's interpreter calls Batch and S3
    requests.post(
        f"{endpoint}/moto-api/config",
        json={"stepfunctions": {"execute_state_machine": run_jobs}, "batch": {"use_docker": run_jobs}},
        timeout=30,
    ).raise_for_status()
    correct_emulator()

    def stop() -> None:
        # Jobs an execution stopped from magnus left running (AWS terminates them; moto does not).
        batch = emulator.client("batch")
        for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"):
            for job in batch.list_jobs(jobQueue=JOB_QUEUE, jobStatus=status).get("jobSummaryList", []):
                batch.terminate_job(jobId=job["jobId"], reason="the emulator stops")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and batch.list_jobs(jobQueue=JOB_QUEUE, jobStatus="RUNNING").get(
            "jobSummaryList"
        ):
            time.sleep(0.5)
        stop_server()
        for variable in ("MOTO_PORT", "MOTO_DOCKER_NETWORK_MODE"):
            os.environ.pop(variable, None)
        if podman is not None:
            podman.terminate()
            podman.wait(20)
            del os.environ["DOCKER_HOST"]

    emulator = Emulator(endpoint_url=endpoint, role_arn="", stop=stop)
    iam = emulator.client("iam")
    emulator.role_arn = iam.create_role(RoleName="magnus-sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    batch = emulator.client("batch")
    environment = batch.create_compute_environment(
        computeEnvironmentName="magnus-compute", type="UNMANAGED", state="ENABLED", serviceRole=emulator.role_arn
    )["computeEnvironmentArn"]
    batch.create_job_queue(
        jobQueueName=JOB_QUEUE,
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}],
    )
    emulator.client("s3").create_bucket(Bucket=BUCKET)
    return emulator


# ---- the image of the steps ------------------------------------------------------------------------------
def _podman(*args: str, check: bool = True) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check)


def _base_image(repo: Path) -> str:
    made = subprocess.run([sys.executable, str(repo / "scripts" / "base_image.py")], capture_output=True, text=True)
    if made.returncode != 0:
        raise RuntimeError(made.stderr.strip())
    return made.stdout.strip()


def runtime_image(repo: Path, requirements: Iterable[str], names: Iterable[str]) -> str:
    """The base image with wheels of ``requirements`` (paths of packages, with extras) installed; its tag.

    Built once per machine and content (the tag is a hash of the wheels).
    """
    base = _base_image(repo)
    with tempfile.TemporaryDirectory(prefix="magnus-aws-image-") as scratch:
        context = Path(scratch)
        # pip of a venv of its own: the test environment may have none (nox's uv environments)
        subprocess.run([sys.executable, "-m", "venv", str(context / "venv")], check=True)
        made = subprocess.run(
            [
                str(context / "venv" / "bin" / "pip"),
                "wheel",
                "-q",
                "--wheel-dir",
                str(context / "wheels"),
                *requirements,
            ],
            capture_output=True,
            text=True,
        )
        if made.returncode != 0:
            raise RuntimeError(f"building wheels for the image failed: {made.stderr[-2000:]}")
        wheels = sorted(context.joinpath("wheels").iterdir())
        digest = hashlib.sha1()
        for wheel in wheels:
            digest.update(wheel.name.encode())
            if wheel.name.startswith("magnus"):
                digest.update(wheel.read_bytes())
        tag = f"localhost/magnus-aws-steps:{digest.hexdigest()[:12]}"
        if _podman("image", "exists", tag, check=False).returncode == 0:
            return tag
        (context / "Containerfile").write_text(
            f"FROM {base}\n"
            "COPY wheels /wheels\n"
            "RUN python3 -m venv /opt/magnus && /opt/magnus/bin/pip install -q --no-index --find-links /wheels "
            f"{' '.join(names)} && rm -r /wheels\n"
            'ENV PATH="/opt/magnus/bin:$PATH"\n'
        )
        built = _podman("build", "--pull=never", "-t", tag, str(context), check=False)
        if built.returncode != 0:
            raise RuntimeError(f"building {tag} failed: {built.stderr[-2000:]}")
    return tag


def project_image(runtime: str, project: Path, files: Iterable[str], tag: str) -> str:
    """``runtime`` with ``files`` of ``project`` copied into ``/project``, its working directory, as ``tag``."""
    listed: List[str] = sorted(files)
    copies = "".join(f"COPY {name} /project/{name}\n" for name in listed)
    (project / "Containerfile.magnus-test").write_text(f"FROM {runtime}\n{copies}WORKDIR /project\n")
    try:
        built = _podman(
            "build",
            "--pull=never",
            "-f",
            str(project / "Containerfile.magnus-test"),
            "-t",
            tag,
            str(project),
            check=False,
        )
    finally:
        (project / "Containerfile.magnus-test").unlink()
    if built.returncode != 0:
        raise RuntimeError(f"building {tag} failed: {built.stderr[-2000:]}")
    return tag
