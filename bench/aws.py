"""magnus on AWS Step Functions + Batch versus bare Batch jobs running ``true``, on the same emulator.

moto's server interprets the state machines and runs every Batch job as a container of the same
image through podman (:mod:`magnus_executor_aws.testing`, as the acceptance tests do). Two workloads:

- a chain of ``--steps`` no-op python steps: ``magnus execute`` (render, register, create, start,
  follow to the end) against a hand-written state machine of as many Task states whose jobs run
  ``true``, started and waited for with boto3. Reported per step: the magnus run also has its
  success node's job, and each job runs ``magnus execute_single_node`` (python start-up, reading
  and writing the run log in S3) where the bare job runs ``true``.
- a map over ``--items`` no-op items (``max_concurrency`` 10 on both sides): magnus's fan-out job,
  a distributed Map reading the items from S3, a fan-in job, against a bare distributed Map over
  the same number of items running ``true``.

Each workload also runs as bare jobs that start python, import s3fs and read one object: the least
any python job costs that keeps its record in S3, which no overhead of magnus's can go below.

    python bench/aws.py [--steps 10] [--items 100]      # --items 0: the chain only

Needs podman (scripts/install-test-tools), and magnus-core, magnus-executor-aws[test],
magnus-runlog-chunked and magnus-catalog-fsspec with s3fs installed where it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

import yaml

from magnus.testing.pipelines import dag, map_of, task
from magnus_executor_aws.testing import Emulator, project_image, runtime_image, start_emulator

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ROOT / "packages"
NOOP = "def noop() -> None:\n    pass\n\n\ndef item(item: int) -> None:\n    pass\n"


def chain(steps: int) -> Dict[str, Any]:
    names = [f"step{index}" for index in range(steps)]
    tasks = {
        name: task("noop_steps.noop", following) for name, following in zip(names, [*names[1:], "success"], strict=True)
    }
    return {"dag": dag(names[0], tasks)}


def mapped() -> Dict[str, Any]:
    return {"dag": dag("over", {"over": map_of("noop_steps.item")})}


def bare_job(queue: str, definition: str, name: str, command: List[str]) -> Dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::batch:submitJob.sync",
        "Parameters": {
            "JobName": name,
            "JobQueue": queue,
            "JobDefinition": definition,
            "ContainerOverrides": {"Command": command},
        },
        "ResultPath": None,
    }


def bare_chain(queue: str, definition: str, steps: int, command: List[str]) -> Dict[str, Any]:
    names = [f"step{index}" for index in range(steps)]
    states = {
        name: {**bare_job(queue, definition, name, command), "Next": following}
        for name, following in zip(names, [*names[1:], "done"], strict=True)
    }
    return {"StartAt": names[0], "States": {**states, "done": {"Type": "Succeed"}}}


def bare_map(queue: str, definition: str, bucket: str, command: List[str]) -> Dict[str, Any]:
    return {
        "StartAt": "over",
        "States": {
            "over": {
                "Type": "Map",
                "MaxConcurrency": 10,
                "End": True,
                "ResultPath": None,
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "JSON"},
                    "Parameters": {"Bucket": bucket, "Key": "bench/bare-items.json"},
                },
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "each",
                    "States": {"each": {**bare_job(queue, definition, "each", command), "End": True}},
                },
            }
        },
    }


def run_bare(emulator: Emulator, definition: Dict[str, Any], name: str) -> float:
    """Seconds from starting an execution of ``definition`` to its end (polled every 0.2 s)."""
    sfn = emulator.client("stepfunctions")
    machine = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=emulator.role_arn)
    started = time.perf_counter()
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name=f"{name}-run")["executionArn"]
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
        time.sleep(0.2)
    elapsed = time.perf_counter() - started
    status = sfn.describe_execution(executionArn=execution)["status"]
    assert status == "SUCCEEDED", status
    return elapsed


def run_magnus(project: Path, emulator: Emulator, pipeline: str, run_id: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "magnus",
            "execute",
            "-f",
            pipeline,
            "-p",
            "params.yaml",
            "-c",
            "aws.yaml",
            "--run-id",
            run_id,
            "-q",
        ],
        cwd=project,
        env={**os.environ, **emulator.environment()},
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    return elapsed


def main(arguments: List[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--items", type=int, default=100)
    options = parser.parse_args(arguments)
    emulator = start_emulator()
    try:
        runtime = runtime_image(
            ROOT,
            [
                str(PACKAGES / name)
                for name in ("magnus-core", "magnus-executor-aws", "magnus-runlog-chunked", "magnus-catalog-fsspec")
            ]
            + ["s3fs"],
            ["magnus-core", "magnus-executor-aws", "magnus-runlog-chunked", "magnus-catalog-fsspec", "s3fs"],
        )
        with tempfile.TemporaryDirectory(prefix="magnus-bench-aws-") as scratch:
            project = Path(scratch)
            (project / "noop_steps.py").write_text(NOOP)
            (project / "chain.yaml").write_text(yaml.safe_dump(chain(options.steps)))
            (project / "map.yaml").write_text(yaml.safe_dump(mapped()))
            (project / "params.yaml").write_text(yaml.safe_dump({"items": list(range(options.items))}))
            image = "localhost/magnus-aws-bench:latest"
            prefix = f"s3://{emulator.bucket}/bench"
            config = {
                "executor": {
                    "type": "aws-step-functions",
                    "config": {
                        "job_queue": emulator.job_queue,
                        "image": image,
                        "region": emulator.region,
                        "role_arn": emulator.role_arn,
                        "iterations_location": f"{prefix}/items",
                        "environment": emulator.environment(),
                        "poll_seconds": 0.2,
                        "memory": 512,
                        "max_concurrency": 10,
                    },
                },
                "run_log_store": {"type": "chunked-fs", "config": {"log_folder": f"{prefix}/run-logs"}},
                "catalog": {"type": "fsspec", "config": {"location": f"{prefix}/catalog"}},
            }
            (project / "aws.yaml").write_text(yaml.safe_dump(config))
            project_image(
                runtime, project, ["noop_steps.py", "chain.yaml", "map.yaml", "params.yaml", "aws.yaml"], image
            )
            batch = emulator.client("batch")
            definition = batch.register_job_definition(
                jobDefinitionName="bare-true",
                type="container",
                containerProperties={
                    "image": image,
                    "command": ["true"],
                    "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
                    "environment": [{"name": name, "value": value} for name, value in emulator.environment().items()],
                },
            )["jobDefinitionArn"]
            emulator.client("s3").put_object(
                Bucket=emulator.bucket,
                Key="bench/bare-items.json",
                Body=json.dumps(list(range(options.items))).encode(),
            )
            # the least a python job keeping its record in S3 costs: start, import s3fs, read one object
            reads = ["python", "-c", f"import s3fs; s3fs.S3FileSystem().cat('{emulator.bucket}/bench/bare-items.json')"]
            queue = emulator.job_queue
            rows = []
            ours = run_magnus(project, emulator, "chain.yaml", "chain-run")
            bare = run_bare(emulator, bare_chain(queue, definition, options.steps, ["true"]), "bare-chain")
            floor = run_bare(emulator, bare_chain(queue, definition, options.steps, reads), "reading-chain")
            rows.append((f"chain of {options.steps} no-op steps", ours, bare, floor, options.steps))
            if options.items:
                ours = run_magnus(project, emulator, "map.yaml", "map-run")
                bare = run_bare(emulator, bare_map(queue, definition, emulator.bucket, ["true"]), "bare-map")
                floor = run_bare(emulator, bare_map(queue, definition, emulator.bucket, reads), "reading-map")
                rows.append((f"map over {options.items} no-op items", ours, bare, floor, options.items))
    finally:
        emulator.stop()
    print(
        "| workload | magnus (s) | bare `true` jobs (s) | ratio | bare python jobs reading S3 (s) | ratio to those "
        "| magnus per step (s) | bare `true` per step (s) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, ours, bare, floor, count in rows:
        print(
            f"| {name} | {ours:.1f} | {bare:.1f} | {ours / bare:.2f}x | {floor:.1f} | {ours / floor:.2f}x "
            f"| {ours / count:.2f} | {bare / count:.2f} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
