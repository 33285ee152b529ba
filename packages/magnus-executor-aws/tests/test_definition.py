"""The state machine of a pipeline: States Language the validator accepts, routed as the plan routes.

Each definition is checked with ``asl-validator`` (the npm package) as well as by its shape. Running
them is the acceptance suite's (``tests/test_aws_step_functions.py``: moto interprets them, podman
runs the jobs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
import yaml

from magnus.entrypoints import load_pipeline
from magnus.errors import ConfigurationError
from magnus.runtime.services import RunOptions
from magnus_executor_aws import intrinsics
from magnus_executor_aws.definition import DefinitionBuilder, Rendered
from magnus_executor_aws.executor import StepFunctionsExecutor
from magnus_executor_aws.names import job_name, state_name
from magnus_executor_aws.settings import StepFunctionsSettings

Validate = Callable[[Dict[str, Any]], str]

SETTINGS = {"job_queue": "magnus-queue", "image": "123.dkr.ecr.eu-west-1.amazonaws.com/team/project:v3"}


def _branch(step: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "start_at": "work",
        "steps": {"work": {**step, "next": "success"}, "success": {"type": "success"}, "fail": {"type": "fail"}},
    }


TASK = {"type": "task", "command_type": "shell", "command": "echo hi"}
EVERY_KIND = {
    "start_at": "prepare",
    "steps": {
        "prepare": {**TASK, "next": "both"},
        "both": {"type": "parallel", "next": "each", "branches": {"a": _branch(TASK), "b": _branch({"type": "stub"})}},
        "each": {"type": "map", "iterate_on": "items", "iterate_as": "item", "branch": _branch(TASK), "next": "nested"},
        "nested": {"type": "dag", "dag_definition": "inner.yaml", "next": "report"},
        "report": {**TASK, "on_failure": "tidy", "next": "success"},
        "tidy": {**TASK, "next": "fail"},
        "success": {"type": "success"},
        "fail": {"type": "fail"},
    },
}


def render(folder: Path, dag: Dict[str, Any], **settings: Any) -> Rendered:
    """The definition of ``dag`` (written to ``folder/pipeline.yaml``) with the executor's ``settings``."""
    (folder / "pipeline.yaml").write_text(yaml.safe_dump({"dag": dag}))
    (folder / "inner.yaml").write_text(yaml.safe_dump({"dag": _branch(TASK)}))
    pipeline = load_pipeline(str(folder / "pipeline.yaml"))
    reference = RunOptions(pipeline_file="pipeline.yaml", configuration_file="aws.yaml", parameters_file="p.yaml")
    chosen = StepFunctionsSettings(**{**SETTINGS, "iterations_location": "s3://bucket/items", **settings})
    return DefinitionBuilder(chosen, pipeline.plan, reference, prefix="magnus-pipeline").build()


def _tasks(states: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """Every Task state, those of Parallel branches and Map processors included, by name."""
    found: Dict[str, Dict[str, Any]] = {}
    for name, state in states.items():
        if state["Type"] == "Task":
            found[name] = state
        for branch in state.get("Branches", []):
            found.update(_tasks(branch["States"]))
        if "ItemProcessor" in state:
            found.update(_tasks(state["ItemProcessor"]["States"]))
    return found


def test_every_kind_of_step_renders_as_valid_states_language(tmp_path: Path, asl_validator: Validate) -> None:
    rendered = render(tmp_path, EVERY_KIND, max_concurrency=4, retry={"max_attempts": 2})
    asl_validator(rendered.definition)
    states = rendered.definition["States"]
    assert rendered.definition["StartAt"] == "prepare"
    assert states["prepare"]["Next"] == "both fan-out"
    assert states["prepare"]["Catch"][0]["Next"] == "fail", "a failure goes to the dag's fail node"
    assert states["both branches"]["Type"] == "Parallel" and len(states["both branches"]["Branches"]) == 2
    assert states["both branches"]["Next"] == "both fan-in"
    # a map: items id, fan-out writing the items to S3, Map reading them, fan-in
    assert states["both fan-in"]["Next"] == "each items"
    assert states["each items"]["Next"] == "each fan-out"
    mapped = states["each branches"]
    assert mapped["Type"] == "Map" and mapped["MaxConcurrency"] == 4
    assert mapped["ItemReader"]["Parameters"]["Bucket"] == "bucket"
    assert mapped["ItemSelector"] == {"map_variable.$": "$$.Map.Item.Value", "run_id.$": "$$.Execution.Name"}
    assert mapped["Next"] == "each fan-in"
    assert states["nested branches"]["Type"] == "Parallel", "a nested dag is a Parallel of one branch"
    assert states["report"]["Catch"][0]["Next"] == "tidy", "on_failure is a Catch"
    assert states["success ended"] == {"Type": "Succeed"}
    assert states["magnus run failed"]["Type"] == "Fail"
    tasks = _tasks(states)
    assert all(task["Resource"] == "arn:aws:states:::batch:submitJob.sync" for task in tasks.values())
    assert all(task["ResultPath"] is None for task in tasks.values()), "job results never fill the payload"
    assert "Retry" in tasks["prepare"] and "Retry" not in tasks["both fan-out"], "only user code is retried"
    assert tasks["prepare"]["Retry"][0]["MaxAttempts"] == 2
    assert len(rendered.job_definitions) == 1, "one job definition per image and resources"


def test_the_command_is_the_launch_request_with_the_run_position_and_retry_filled_in(tmp_path: Path) -> None:
    states = render(tmp_path, EVERY_KIND, retry={"max_attempts": 1}).definition["States"]
    tasks = _tasks(states)
    command = tasks["prepare"]["Parameters"]["ContainerOverrides"]["Command.$"]
    assert command == (
        "States.Array('magnus', 'execute_single_node', $$.Execution.Name, 'pipeline.yaml', 'prepare', '--retry', "
        "States.Format('{}', $$.State.RetryCount), '-c', 'aws.yaml', '-p', 'p.yaml')"
    )
    inside = tasks[state_name("each.map_variable_placeholder.work")]["Parameters"]["ContainerOverrides"]["Command.$"]
    assert "'--map-variable', $.map_variable" in inside
    # an item of a distributed Map is a child execution with a name of its own: the run id is passed down
    assert "States.Array('magnus', 'execute_single_node', $.run_id, " in inside
    assert "$$.Execution" not in json.dumps(states["each branches"]["ItemProcessor"])
    fan_out = tasks["each fan-out"]["Parameters"]["ContainerOverrides"]["Command.$"]
    assert (
        "'--iterations-file', States.Format('s3://bucket/items/{}/each-{}.json', $$.Execution.Name, "
        "$.magnus_items.id)" in fan_out
    )
    reader = states["each branches"]["ItemReader"]["Parameters"]["Key.$"]
    assert reader == "States.Format('items/{}/each-{}.json', $$.Execution.Name, $.magnus_items.id)"


def test_an_item_of_one_plain_step_is_one_job_walking_its_branch(tmp_path: Path, asl_validator: Validate) -> None:
    rendered = render(tmp_path, EVERY_KIND, max_concurrency=4)  # no retry: nothing relaunches the step's job
    asl_validator(rendered.definition)
    processor = rendered.definition["States"]["each branches"]["ItemProcessor"]
    walk = state_name("each.map_variable_placeholder walk")
    ended = state_name("each.map_variable_placeholder ended")
    assert processor["StartAt"] == walk and set(processor["States"]) == {walk, ended}
    job = processor["States"][walk]
    assert job["Next"] == ended and job["Catch"][0]["Next"] == ended, "the fan-in settles the map from the run log"
    assert job["Parameters"]["ContainerOverrides"]["Command.$"] == (
        "States.Array('magnus', 'execute_branch', $.run_id, 'pipeline.yaml', 'each', "
        "'each.map_variable_placeholder', '--map-variable', $.map_variable, '-c', 'aws.yaml', '-p', 'p.yaml')"
    )
    # a retry, an override or a second step keeps a job per step
    retried = render(tmp_path, EVERY_KIND, retry={"max_attempts": 1}).definition["States"]["each branches"]
    assert walk not in retried["ItemProcessor"]["States"]


def test_a_step_before_its_success_node_records_that_end_in_its_own_job(
    tmp_path: Path, asl_validator: Validate
) -> None:
    rendered = render(tmp_path, EVERY_KIND)  # no retry: nothing relaunches the step's job
    asl_validator(rendered.definition)
    states = rendered.definition["States"]
    report = states["report"]
    assert report["Parameters"]["ContainerOverrides"]["Command.$"] == (
        "States.Array('magnus', 'execute_single_node', $$.Execution.Name, 'pipeline.yaml', 'report', "
        "'--then-end', '-c', 'aws.yaml', '-p', 'p.yaml')"
    )
    assert report["Next"] == "success ended" and report["Catch"][0]["Next"] == "tidy"
    assert "success" not in states, "no job of its own for the run's end"
    tidy = states["tidy"]["Parameters"]["ContainerOverrides"]["Command.$"]
    assert "--then-end" not in tidy and states["tidy"]["Next"] == "fail", "a fail node keeps its job"
    branch = states["both branches"]["Branches"][0]["States"]
    work = branch[state_name("both.a.work")]
    assert "'--then-end'" in work["Parameters"]["ContainerOverrides"]["Command.$"]
    assert work["Next"] == state_name("both.a.success ended")
    # a retry relaunches the step's job: the end keeps a job of its own
    retried = render(tmp_path, EVERY_KIND, retry={"max_attempts": 2}).definition["States"]
    assert retried["report"]["Next"] == "success" and "--then-end" not in json.dumps(retried["report"])


def test_literals_escape_what_intrinsic_functions_read() -> None:
    assert intrinsics.literal("it's {x} \\ y") == "'it\\'s \\{x\\} \\\\ y'"
    assert intrinsics.word(f"a{{b}}{intrinsics.RUN_ID}") == "States.Format('a\\{b\\}{}', $$.Execution.Name)"


def test_overrides_change_the_job_of_one_step(tmp_path: Path, asl_validator: Validate) -> None:
    dag = {
        **EVERY_KIND,
        "steps": {
            **EVERY_KIND["steps"],
            "prepare": {**TASK, "next": "both", "overrides": {"aws-step-functions": "big"}},
        },
    }
    rendered = render(
        tmp_path, dag, overrides={"big": {"vcpus": 8, "memory": 32768, "job_queue": "gpu-queue", "image": "other:v1"}}
    )
    asl_validator(rendered.definition)
    prepare = rendered.definition["States"]["prepare"]["Parameters"]
    assert prepare["JobQueue"] == "gpu-queue"
    big = rendered.job_definitions[prepare["JobDefinition"]]
    assert (big.image, big.vcpus, big.memory) == ("other:v1", 8, 32768)
    assert len(rendered.job_definitions) == 2


def test_the_environment_is_passed_as_given_and_secrets_never_enter(tmp_path: Path) -> None:
    rendered = render(tmp_path, EVERY_KIND, environment={"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"})
    environment = rendered.definition["States"]["prepare"]["Parameters"]["ContainerOverrides"]["Environment"]
    assert environment == [{"Name": "AWS_ENDPOINT_URL", "Value": "http://127.0.0.1:5000"}]


def test_step_names_become_batch_job_names_deterministically_and_uniquely() -> None:
    assert job_name("train") == "train"
    assert job_name("each chunk") != job_name("each-chunk") == "each-chunk"
    long = "x" * 200
    assert len(job_name(long)) <= 128 and job_name(long) == job_name(long) != job_name(long + "y")
    for name in ("a.b c", "é", "-lead", "each.map_variable_placeholder.work"):
        made = job_name(name)
        assert made[0].isalnum() and all(c.isalnum() or c in "-_" for c in made) and made.isascii(), made
    assert len(state_name("s" * 100)) == 80


def test_a_map_without_an_items_location_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"step 'each': .* set executor.config.iterations_location"):
        render(tmp_path, EVERY_KIND, iterations_location="")


def test_a_conditional_reads_its_choice_and_runs_that_branch(tmp_path: Path, asl_validator: Validate) -> None:
    dag = {
        "start_at": "pick",
        "steps": {
            "pick": {
                "type": "conditional",
                "parameter": "which",
                "branches": {"a": _branch(TASK), "b": _branch(TASK)},
                "next": "success",
            },
            "success": {"type": "success"},
            "fail": {"type": "fail"},
        },
    }
    rendered = render(tmp_path, dag)
    asl_validator(rendered.definition)
    states = rendered.definition["States"]
    assert rendered.definition["StartAt"] == "pick items"
    assert states["pick fan-out"]["Next"] == "pick chosen"
    assert states["pick chosen"]["Resource"] == "arn:aws:states:::aws-sdk:s3:getObject"
    assert [(c["StringEquals"], c["Next"]) for c in states["pick choice"]["Choices"]] == [
        ("a", "pick branch a"),
        ("b", "pick branch b"),
    ]
    assert states["pick choice"]["Default"] == "pick fan-in"
    assert states["pick branch a"]["Next"] == "pick fan-in"


def test_a_loop_is_a_cycle_of_reading_the_next_position_walking_it_and_deciding(
    tmp_path: Path, asl_validator: Validate
) -> None:
    dag = {
        "start_at": "again",
        "steps": {
            "again": {
                "type": "loop",
                "branch": _branch(TASK),
                "max_iterations": 3,
                "break_on": "done",
                "index_as": "index",
                "next": "success",
            },
            "success": {"type": "success"},
            "fail": {"type": "fail"},
        },
    }
    rendered = render(tmp_path, dag)
    asl_validator(rendered.definition)
    states = rendered.definition["States"]
    assert rendered.definition["StartAt"] == "again items"
    assert states["again fan-out"]["Next"] == "again position"
    assert states["again position"]["Resource"] == "arn:aws:states:::aws-sdk:s3:getObject"
    assert states["again goes on"]["Choices"] == [
        {"Variable": "$.magnus_loop.positions[0]", "IsPresent": True, "Next": "again iteration"}
    ]
    assert states["again goes on"]["Default"] == "again fan-in"
    iteration = states["again iteration"]
    assert iteration["Type"] == "Parallel" and iteration["Next"] == "again decision"
    assert iteration["Parameters"] == {"map_variable.$": "$.magnus_loop.positions[0]", "run_id.$": "$$.Execution.Name"}
    decision = " ".join(states["again decision"]["Parameters"]["ContainerOverrides"]["Command.$"].split())
    assert "'fan'" in decision and "'-m', 'next'" in decision and "'--iterations-file'" in decision
    assert states["again decision"]["Next"] == "again position"
    # the iteration's steps read the position and the run id the Parallel passes down
    work = " ".join(
        iteration["Branches"][0]["States"][state_name("again.map_variable_placeholder.work")]["Parameters"][
            "ContainerOverrides"
        ]["Command.$"].split()
    )
    assert "$.map_variable" in work and "$.run_id" in work


def test_a_definition_over_one_megabyte_is_refused(tmp_path: Path) -> None:
    steps: Dict[str, Any] = {}
    names: List[str] = [f"step-{index}-" + "w" * 60 for index in range(1500)]
    for index, name in enumerate(names):
        steps[name] = {**TASK, "next": names[index + 1] if index + 1 < len(names) else "success"}
    dag = {"start_at": names[0], "steps": {**steps, "success": {"type": "success"}, "fail": {"type": "fail"}}}
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump({"dag": dag}))
    executor = StepFunctionsExecutor(**SETTINGS)
    pipeline = load_pipeline(str(tmp_path / "pipeline.yaml"))

    class Services:  # what _rendered reads of a run's services
        options = RunOptions(pipeline_file="pipeline.yaml", configuration_file="aws.yaml")
        run_id = "r"

    Services.pipeline = pipeline  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match="over AWS Step Functions' limit of 1,048,576"):
        executor._rendered(pipeline.plan, Services())  # type: ignore[arg-type]


def test_the_same_pipeline_renders_the_same_bytes(tmp_path: Path) -> None:
    assert render(tmp_path, EVERY_KIND).to_json() == render(tmp_path, EVERY_KIND).to_json()
    json.loads(render(tmp_path, EVERY_KIND).to_json())


def test_a_job_submitted_with_more_than_the_payload_limit_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump({"dag": _branch(TASK)}))
    executor = StepFunctionsExecutor(**SETTINGS, environment={"BIG": "x" * 300_000})
    pipeline = load_pipeline(str(tmp_path / "pipeline.yaml"))

    class Services:  # what _rendered reads of a run's services
        options = RunOptions(pipeline_file="pipeline.yaml", configuration_file="aws.yaml")
        run_id = "r"

    with pytest.raises(
        ConfigurationError, match=r"^state '\w+': what its job is submitted with is 300,\d+ bytes, over"
    ):
        executor._rendered(pipeline.plan, Services())  # type: ignore[arg-type]


def test_the_run_log_records_environment_names_not_values() -> None:
    executor = StepFunctionsExecutor(
        **SETTINGS,
        environment={"AWS_SECRET_ACCESS_KEY": "not-for-run-logs"},
        overrides={"big": {"environment": {"TOKEN": "nor-this"}}},
    )
    summary = json.dumps(executor.get_summary())
    assert "not-for-run-logs" not in summary and "nor-this" not in summary
    assert executor.get_summary()["environment"] == {"AWS_SECRET_ACCESS_KEY": "(set)"}
