"""The SDK builds the same dag a YAML file holds and runs it the same way."""

from __future__ import annotations

import textwrap
import traceback
from pathlib import Path

import pytest
import yaml

from magnus import Catalog, Fail, Map, Parallel, Pipeline, Stub, Success, Task
from magnus.entrypoints import execute
from magnus.errors import PipelineDefinitionError, UserInputError
from magnus.testing.executor import outcome


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sdk_steps.py").write_text(
        textwrap.dedent(
            """
            def one(x: int) -> dict:
                open("out.txt", "w").write("data")
                return {"y": x + 1}

            def each(item: int, y: int) -> dict:
                return {f"item_{item}": item + y}
            """
        )
    )
    (tmp_path / "params.yaml").write_text("x: 1\nitems: [1, 2]\n")
    (tmp_path / "config.yaml").write_text("run_log_store:\n  type: file-system\n")
    return tmp_path


def build() -> Pipeline:
    one = Task(name="one", command="sdk_steps.one", catalog=Catalog(put=["out.txt"]))
    work = Task(name="work", command="sdk_steps.each", terminate_with_success=True)
    each = Map(
        name="each",
        iterate_on="items",
        iterate_as="item",
        branch=Pipeline(steps=[work]),
        terminate_with_success=True,
    )
    shell = Task(name="shell", command_type="shell", command="export MAGNUS_PRM_sh=1", terminate_with_success=True)
    both = Parallel(
        name="both",
        branches={"map": Pipeline(steps=[each]), "sh": Pipeline(steps=[shell])},
    )
    end = Stub(name="end", anything="goes", terminate_with_success=True)
    one >> both >> end
    return Pipeline(start_at=one, steps=[one, both, end], add_terminal_nodes=True)


def test_sdk_pipeline_equals_its_yaml(project: Path) -> None:
    pipeline = build()
    (project / "pipeline.yaml").write_text(yaml.safe_dump({"dag": pipeline.dag()}))
    from_sdk = pipeline.execute(configuration_file="config.yaml", parameters_file="params.yaml", run_id="sdk", tag="t")
    from_yaml = execute("pipeline.yaml", "config.yaml", "params.yaml", run_id="yaml")
    assert from_sdk.status == "SUCCESS"
    assert outcome(from_sdk) == outcome(from_yaml)
    assert (
        from_sdk.parameters
        == from_yaml.parameters
        == {
            "x": 1,
            "items": [1, 2],
            "y": 2,
            "item_1": 3,
            "item_2": 4,
            "sh": 1,
        }
    )
    assert from_sdk.dag_hash == from_yaml.dag_hash
    assert from_sdk.tag == "t"
    assert from_sdk.run_config["pipeline_file"].endswith("test_sdk.py")


def test_depends_on_and_shifts() -> None:
    a, b, c = Stub(name="a"), Stub(name="b"), Stub(name="c", terminate_with_success=True)
    b.depends_on(a)
    assert a.next_node == "b"
    b >> c
    assert b.next_node == "c"
    assert (c << Stub(name="d")).name == "d"
    with pytest.raises(UserInputError):
        Stub(name="z").depends_on(c)
    dag = Pipeline(start_at="a", steps=[a, b, c]).dag()
    assert dag["steps"]["c"]["next"] == "success"
    assert set(dag["steps"]) == {"a", "b", "c", "success", "fail"}


def test_explicit_terminal_nodes() -> None:
    a = Stub(name="a", next="done")
    dag = Pipeline(start_at=a, steps=[a, Success(name="done"), Fail(name="broken")], add_terminal_nodes=False).dag()
    assert dag["steps"]["done"] == {"type": "success"} and dag["steps"]["broken"] == {"type": "fail"}


def test_sdk_pipelines_are_validated_like_yaml_when_built(project: Path) -> None:
    a = Task(name="a", command="sdk_steps.one", next="nowhere")
    with pytest.raises(PipelineDefinitionError) as refused:
        Pipeline(steps=[a])
    # said of the step as the code made it, at the line that made it
    assert str(refused.value) == (
        f"step 'a' (made at {a.defined_at}): next: 'nowhere' is not a step (known: a, success, fail)"
    )
    assert a.defined_at.startswith("test_sdk.py:")
    # raised from the line that built the pipeline: no frame of pydantic or of magnus's checks
    frames = [frame.name for frame in traceback.extract_tb(refused.value.__traceback__)]
    assert frames[-1] == "__init__" and "model_post_init" not in frames and "parse_pipeline" not in frames
    assert refused.value.__cause__ is None and refused.value.__suppress_context__


def test_configuration_from_magnus_configuration_file(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """magnus 0.5.1's SDK read MAGNUS_CONFIGURATION_FILE; without an argument (or MAGNUS_CONFIG_FILE) it is read."""
    monkeypatch.setenv("MAGNUS_CONFIGURATION_FILE", "config.yaml")
    end = Stub(name="end", terminate_with_success=True)
    run_log = Pipeline(steps=[end]).execute(run_id="from-env-config")
    assert run_log is not None
    assert (project / ".run_log_store" / "from-env-config.json").is_file()
