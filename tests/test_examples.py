"""Every example under examples/ runs end to end, as a user would run it, from the repository root."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The example pipeline and its parameters, as the README runs them.
EXAMPLE = ("-f", "examples/pipeline.yaml", "-p", "examples/parameters.yaml")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A copy of the examples, so run products stay out of the repository."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def run(workdir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*args], cwd=workdir, capture_output=True, text=True, check=False, env={**os.environ, **(env or {})}
    )


def magnus(workdir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run(workdir, sys.executable, "-m", "magnus", *args, env=env)


def run_log(workdir: Path, run_id: str) -> dict:
    return json.loads((workdir / ".run_log_store" / f"{run_id}.json").read_text())


def test_yaml_pipeline(workdir: Path) -> None:
    result = magnus(workdir, "execute", *EXAMPLE, "-c", "examples/configs/file-system.yaml", "--run-id", "yaml-run")
    assert result.returncode == 0, result.stderr
    assert "the shell step said 'hello from the shell'" in result.stdout
    log = run_log(workdir, "yaml-run")
    assert log["status"] == "SUCCESS"
    branches = log["steps"]["process"]["branches"]["process.chunks"]["steps"]["process.chunks.each chunk"]["branches"]
    assert sorted(branches) == [f"process.chunks.each chunk.{n}" for n in (1, 2, 3, 4)]
    assert log["steps"]["train"]["user_defined_metrics"]["loss"] == {"0": 1.0, "1": 0.5, "2": 0.3333}
    assert log["parameters"]["model_version"] == "v1"


def test_sdk_pipeline(workdir: Path) -> None:
    result = run(workdir, sys.executable, "-m", "examples.sdk_pipeline")
    assert result.returncode == 0, result.stderr
    assert "ended SUCCESS" in result.stdout


def test_the_sdk_pipeline_is_the_yaml_pipeline(workdir: Path) -> None:
    """What docs/index.md says: examples/sdk_pipeline.py and examples/pipeline.yaml are one pipeline,
    and the python file runs as the YAML does (magnus execute -f file.py)."""
    drawn = [magnus(workdir, "graph", "-f", source).stdout for source in ("examples/sdk_pipeline.py", EXAMPLE[1])]
    assert drawn[0] == drawn[1] and "evaluate" in drawn[0]
    result = magnus(
        workdir,
        "execute",
        "-f",
        "examples/sdk_pipeline.py",
        *EXAMPLE[2:],
        "--run-id",
        "py-run",
        "-c",
        "examples/configs/file-system.yaml",
    )
    assert result.returncode == 0, result.stderr
    assert run_log(workdir, "py-run")["steps"]["evaluate"]["step_type"] == "dag"


def test_default_configuration(workdir: Path) -> None:
    result = magnus(workdir, "execute", *EXAMPLE)
    assert result.returncode == 0, result.stderr


def test_mocked_dry_run(workdir: Path) -> None:
    result = magnus(workdir, "execute", *EXAMPLE, "-c", "examples/configs/mocked.yaml", "--run-id", "dry")
    assert result.returncode == 0, result.stderr
    log = run_log(workdir, "dry")
    assert log["steps"]["prepare"]["mock"] is True
    assert "report patched" in result.stdout


def test_resume_example(workdir: Path) -> None:
    common = ["-f", "examples/resume.yaml", "-p", "examples/parameters.yaml", "-c", "examples/configs/file-system.yaml"]
    failed = magnus(workdir, "execute", *common, "--run-id", "first-try")
    assert failed.returncode == 1
    assert "ended FAIL at step 'fetch'" in failed.stderr
    resumed = magnus(
        workdir, "execute", *common, "--run-id", "second-try", "--use-cached", "first-try", env={"EXAMPLE_FIXED": "1"}
    )
    assert resumed.returncode == 0, resumed.stderr
    log = run_log(workdir, "second-try")
    assert log["original_run_id"] == "first-try"
    assert log["steps"]["prepare"]["mock"] is True and log["steps"]["fetch"]["mock"] is False


def test_map_reducer_example(workdir: Path) -> None:
    """examples/map_reduce.yaml with workers: the scores listed in chunk order."""
    (workdir / "workers.yaml").write_text(
        "run_log_store:\n  type: file-system\nexecutor:\n  type: local\n  config:\n    max_workers: 2\n"
    )
    result = magnus(
        workdir,
        "execute",
        "-f",
        "examples/map_reduce.yaml",
        "-p",
        "examples/parameters.yaml",
        "-c",
        "workers.yaml",
        "--run-id",
        "reduced",
    )
    assert result.returncode == 0, result.stderr
    assert "scores by chunk: {1: 10, 2: 20, 3: 30, 4: 40}" in result.stdout
    assert run_log(workdir, "reduced")["parameters"]["score"] == [10, 20, 30, 40]


# ---- the concept gallery (examples/concepts/, docs/gallery/) -------------------------------------------
# Run in this process (magnus's own entry point, as `magnus execute` calls it), each in a scratch copy
# of examples/, and judged by the statuses its run log records, not only by the run's end.

CONCEPTS = ROOT / "examples" / "concepts"
INITIAL = "examples/concepts/initial_parameters.yaml"
FILE_SYSTEM = "examples/configs/file-system.yaml"


def statuses(run_log: Any) -> dict[str, str]:
    """Every step's status, by internal name, branches included (``each file.b.csv.process``)."""
    found: dict[str, str] = {}

    def walk(steps: dict[str, Any]) -> None:
        for step in steps.values():
            found[step["internal_name"]] = step["status"]
            for branch in step["branches"].values():
                walk(branch["steps"])

    walk(run_log.model_dump()["steps"])
    return found


@pytest.fixture
def gallery(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Run an example pipeline in this process, from the scratch copy; its run log."""
    monkeypatch.chdir(workdir)
    monkeypatch.syspath_prepend(str(workdir))

    def execute(pipeline: str, parameters: str = INITIAL, config: str = FILE_SYSTEM, run_id: str = "run") -> Any:
        from magnus.entrypoints import execute as magnus_execute

        return magnus_execute(
            f"examples/concepts/{pipeline}", configuration_file=config, parameters_file=parameters, run_id=run_id
        )

    return execute


SUCCESS, FAIL = "SUCCESS", "FAIL"
# The steps of each item of the map examples (the three files "split" lists).
EACH_FILE = {
    f"each file.{name}.{step}": SUCCESS for name in ("a.csv", "b.csv", "c.csv") for step in ("process", "success")
}
GALLERY = {
    "task_python.yaml": {"hello": SUCCESS, "success": SUCCESS},
    "task_shell.yaml": {"greet": SUCCESS, "success": SUCCESS},
    "task_notebook.yaml": {"notebook": SUCCESS, "success": SUCCESS},
    "stub.yaml": {"extract": SUCCESS, "transform": SUCCESS, "load": SUCCESS, "success": SUCCESS},
    "parallel.yaml": {
        "both": SUCCESS,
        "both.python.hello": SUCCESS,
        "both.python.success": SUCCESS,
        "both.shell.echo": SUCCESS,
        "both.shell.success": SUCCESS,
        "success": SUCCESS,
    },
    "map.yaml": {"split": SUCCESS, "each file": SUCCESS, **EACH_FILE, "success": SUCCESS},
    "map_reduce.yaml": {
        "split": SUCCESS,
        "each file": SUCCESS,
        **EACH_FILE,
        "collect": SUCCESS,
        "success": SUCCESS,
    },
    "nested.yaml": {
        "inner": SUCCESS,
        "inner.dag.hello": SUCCESS,
        "inner.dag.success": SUCCESS,
        "after": SUCCESS,
        "success": SUCCESS,
    },
    "on_failure.yaml": {"risky": FAIL, "recover": SUCCESS, "success": SUCCESS},
    "fail.yaml": {"risky": FAIL, "fail": SUCCESS},
    "retries.yaml": {"download": SUCCESS, "success": SUCCESS},
    "parameters.yaml": {"read initial": SUCCESS, "use returned": SUCCESS, "in the shell": SUCCESS, "success": SUCCESS},
    "interaction.yaml": {"train": SUCCESS, "evaluate": SUCCESS, "success": SUCCESS},
    "returns.yaml": {"fit": SUCCESS, "predict": SUCCESS, "success": SUCCESS},
    "conditional.yaml": {
        "measure": SUCCESS,
        "route": SUCCESS,
        "route.small.quick": SUCCESS,
        "route.small.success": SUCCESS,
        "success": SUCCESS,
    },
    "loop.yaml": {
        "train until good": SUCCESS,
        **{f"train until good.{i}.{step}": SUCCESS for i in range(3) for step in ("train", "success")},
        "publish": SUCCESS,
        "success": SUCCESS,
    },
    "custom_reducer.yaml": {
        "each seed": SUCCESS,
        **{f"each seed.{seed}.{step}": SUCCESS for seed in (3, 5, 11) for step in ("evaluate", "success")},
        "report": SUCCESS,
        "success": SUCCESS,
    },
}


@pytest.mark.parametrize("pipeline", sorted(GALLERY))
def test_concept_example(gallery: Callable[..., Any], pipeline: str) -> None:
    run_log = gallery(pipeline)
    assert statuses(run_log) == GALLERY[pipeline]
    assert run_log.status == (FAIL if pipeline == "fail.yaml" else SUCCESS)


def test_every_concept_example_is_run_here_and_shown_in_the_gallery() -> None:
    """A new example must be added to GALLERY (or a test of its own) and to a gallery page."""
    pages = "".join(page.read_text() for page in (ROOT / "docs" / "gallery").glob("*.md"))
    tested = Path(__file__).read_text()
    for example in sorted(path.name for path in CONCEPTS.glob("*.yaml") if path.name != "initial_parameters.yaml"):
        assert f'"{example}"' in tested, f"examples/concepts/{example} is not run by {Path(__file__).name}"
        assert f"examples/concepts/{example}" in pages, f"examples/concepts/{example} is on no page of docs/gallery"


@pytest.mark.parametrize(
    "twin", sorted(path.stem for path in CONCEPTS.glob("*.py") if (CONCEPTS / f"{path.stem}.yaml").exists())
)
def test_sdk_twin_draws_and_runs_like_its_yaml(gallery: Callable[..., Any], twin: str, workdir: Path) -> None:
    """The SDK version of an example is the same graph (the same diagram) and runs to the same statuses."""
    import importlib

    from magnus.diagram import to_mermaid
    from magnus.entrypoints import load_dag, load_pipeline

    config = "examples/concepts/configs/catalog.yaml" if twin == "catalog" else FILE_SYSTEM
    pipeline = importlib.import_module(f"examples.concepts.{twin}").build()
    assert to_mermaid(load_dag(pipeline.dag()).graph) == to_mermaid(
        load_pipeline(f"examples/concepts/{twin}.yaml").graph
    )

    from_sdk = pipeline.execute(configuration_file=config, parameters_file=INITIAL, run_id="sdk")
    from_yaml = gallery(f"{twin}.yaml", config=config, run_id="yaml")
    assert from_sdk is not None and from_sdk.status == from_yaml.status
    assert statuses(from_sdk) == statuses(from_yaml)


def test_parameters_from_the_environment_override_the_file(
    gallery: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAGNUS_PRM_seed", "7")
    monkeypatch.setenv("MAGNUS_PRM_model", '{"learning_rate": 0.5, "epochs": 1}')
    run_log = gallery("parameters.yaml")
    assert run_log.status == SUCCESS
    # from the environment (not the file's 42), then what read_initial returned merged in
    assert run_log.parameters["seed"] == 7
    assert run_log.parameters["learning_rate"] == 0.05 and run_log.parameters["epochs"] == 2


def test_parameters_returned_by_functions_and_set_by_shell_and_notebook(gallery: Callable[..., Any]) -> None:
    assert gallery("parameters.yaml", run_id="p").parameters["learning_rate"] == 0.001
    assert gallery("task_shell.yaml", run_id="s").parameters["greeting"] == "hello from the shell"
    notebook = gallery("task_notebook.yaml", run_id="n")
    assert notebook.parameters["greeting"] == "hello from the notebook, magnus"
    assert Path("examples/concepts/notebook_out.ipynb").is_file()


def test_map_reducer_collects_every_iteration_in_order(gallery: Callable[..., Any]) -> None:
    run_log = gallery("map_reduce.yaml")
    assert run_log.parameters["processed"] == ["A.CSV", "B.CSV", "C.CSV"]
    assert run_log.parameters["count"] == 3
    assert gallery("map.yaml", run_id="no-reducer").parameters["processed"] == "C.CSV"  # the last one


def test_conditional_loop_and_custom_reducer_examples_decide_as_documented(gallery: Callable[..., Any]) -> None:
    routed = gallery("conditional.yaml", run_id="conditional")
    assert routed.steps["route"].message == "took branch 'small': dataset_size = \"small\""
    assert routed.parameters["trained_with"] == "one process"
    looped = gallery("loop.yaml", run_id="loop")
    assert looped.steps["train until good"].message == "stopped after iteration 2: good_enough is true"
    assert looped.parameters["accuracy"] == 0.8
    reduced = gallery("custom_reducer.yaml", run_id="reducer")
    assert reduced.parameters["score"] == max(round(0.6 + (seed % 7) / 20, 2) for seed in (3, 5, 11)) == 0.85


def test_retries_record_every_attempt(gallery: Callable[..., Any]) -> None:
    for run_id in ("first", "second"):  # each run fails twice before it succeeds
        attempts = gallery("retries.yaml", run_id=run_id).steps["download"].attempts
        assert [attempt.status for attempt in attempts] == [FAIL, FAIL, SUCCESS]
    assert not list(Path.cwd().glob("*.attempts"))


def test_interaction_api_records_metrics_objects_and_parameters(gallery: Callable[..., Any]) -> None:
    run_log = gallery("interaction.yaml")
    assert run_log.steps["train"].user_defined_metrics == {"loss": {"0": 1.0, "1": 0.5, "2": 0.333}, "accuracy": 0.9}
    assert run_log.parameters["model_name"] == "tiny"


def test_catalog_moves_data_between_steps(gallery: Callable[..., Any], workdir: Path) -> None:
    run_log = gallery("catalog.yaml", parameters="", config="examples/concepts/configs/catalog.yaml")
    assert statuses(run_log) == {"write": SUCCESS, "clean": SUCCESS, "read": SUCCESS, "success": SUCCESS}
    assert run_log.parameters["total"] == 45
    assert (workdir / ".catalog" / "run" / "data" / "numbers.txt").is_file()
    assert [entry.name for entry in run_log.steps["read"].data_catalog if entry.stage == "get"] == ["data/numbers.txt"]


@pytest.mark.parametrize("config", ["dotenv.yaml", "env-secrets.yaml"])
def test_secrets_reach_the_step_and_never_the_run_log(
    gallery: Callable[..., Any], config: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "not-a-real-token" if config == "dotenv.yaml" else "token-from-the-environment"
    monkeypatch.setenv("API_TOKEN", secret) if config == "env-secrets.yaml" else monkeypatch.delenv(
        "API_TOKEN", raising=False
    )
    run_log = gallery("secrets.yaml", parameters="", config=f"examples/concepts/configs/{config}")
    assert statuses(run_log) == {"call the api": SUCCESS, "success": SUCCESS}
    assert secret not in (workdir / ".run_log_store" / "run.json").read_text()


def test_mocked_executor_runs_only_the_patches(gallery: Callable[..., Any]) -> None:
    run_log = gallery("parameters.yaml", parameters="", config="examples/concepts/configs/mocked.yaml")
    assert statuses(run_log) == GALLERY["parameters.yaml"]  # read_initial needs parameters: it did not run
    mocked = {name: step.mock for name, step in run_log.steps.items() if name != "success"}
    assert mocked == {"read initial": True, "use returned": False, "in the shell": True}


def test_the_example_with_several_trackers_reaches_each(workdir: Path, tmp_path: Path) -> None:
    """examples/configs/trackers.yaml: TensorBoard, W&B (offline) and a trace file, from one run."""
    wandb_home = tmp_path / "wandb-home"
    wandb_home.mkdir()
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_CONFIG_DIR": str(wandb_home)}
    env.update({"WANDB_CACHE_DIR": str(wandb_home), "WANDB_DATA_DIR": str(wandb_home)})
    config = ("-c", "examples/configs/trackers.yaml", "--run-id", "tracked-run", "--tag", "docs")
    result = magnus(workdir, "execute", *EXAMPLE, *config, env=env)
    assert result.returncode == 0, result.stderr
    assert len(run_log(workdir, "tracked-run")["run_config"]["experiment_tracker"]["trackers"]) == 3
    assert list((workdir / ".tensorboard" / "tracked-run" / "train").glob("events.out.tfevents.*"))
    assert len(list((workdir / ".wandb" / "wandb").glob("offline-run-*/run-*.wandb"))) == 6  # the run, train, 4 items
    spans = [json.loads(line) for line in (workdir / ".traces" / "spans.jsonl").read_text().splitlines()]
    assert len({span["context"]["trace_id"] for span in spans}) == 1
    assert {span["attributes"]["magnus.status"] for span in spans} == {"SUCCESS"}
