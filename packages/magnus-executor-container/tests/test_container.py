"""The local-container executor against a real container engine (podman serving the Docker API)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml

from magnus.entrypoints import execute
from magnus.errors import ConfigurationError
from magnus.testing import ExecutorContract
from magnus.testing.executor import outcome
from magnus.testing.pipelines import task, write_pipeline

pytestmark = pytest.mark.service


def container_config(image: str, tmp_path: Path, **extra: Any) -> Dict[str, Any]:
    return {
        "executor": {"type": "local-container", "config": {"docker_image": image, "network_mode": "none", **extra}},
        "run_log_store": {"type": "file-system", "config": {"log_folder": ".run_log_store"}},
    }


class TestInContainers(ExecutorContract):
    """The reference pipelines: linear, shell, parallel, map, on_failure, a failing step, a resume."""

    @pytest.fixture
    def configuration(self, image: str, tmp_path: Path) -> Dict[str, Any]:
        return container_config(image, tmp_path)


class TestInContainersInParallel(ExecutorContract):
    @pytest.fixture
    def configuration(self, image: str, tmp_path: Path) -> Dict[str, Any]:
        return container_config(image, tmp_path, enable_parallel=True)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "where.py").write_text(
        textwrap.dedent(
            """
            import os

            def where() -> dict:
                return {"in_container": os.path.exists("/run/.containerenv") or os.path.exists("/.dockerenv"),
                        "flavour": os.environ.get("FLAVOUR", "plain")}
            """
        )
    )
    special = task('export MAGNUS_PRM_special="$FLAVOUR"', command_type="shell", overrides={"local-container": "spicy"})
    write_pipeline(tmp_path, {"where": task("where.where", "special"), "special": special}, "where")
    return tmp_path


def write_config(project: Path, config: Dict[str, Any]) -> str:
    (project / "config.yaml").write_text(yaml.safe_dump(config))
    return "config.yaml"


def test_steps_really_run_in_containers_with_overrides(project: Path, image: str) -> None:
    config = container_config(
        image, project, environment={"FLAVOUR": "plain"}, overrides={"spicy": {"environment": {"FLAVOUR": "spicy"}}}
    )
    run_log = execute("pipeline.yaml", write_config(project, config), run_id="where-run")
    assert run_log is not None and run_log.status == "SUCCESS", {k: s.message for k, s in run_log.steps.items()}
    assert run_log.parameters == {"in_container": True, "flavour": "plain", "special": "spicy"}


def test_same_outcome_as_the_local_executor(project: Path, image: str) -> None:
    local = execute("pipeline.yaml", write_config(project, {"run_log_store": {"type": "file-system"}}), run_id="l")
    config = container_config(image, project, overrides={"spicy": {}})
    contained = execute("pipeline.yaml", write_config(project, config), run_id="c")
    assert local is not None and contained is not None
    assert outcome(local) == outcome(contained)


def test_unreachable_engine_names_docker_host(project: Path, image: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/engine.sock")
    with pytest.raises(ConfigurationError, match=r"cannot reach a container engine at DOCKER_HOST=unix:///nonexistent"):
        config = container_config(image, project, overrides={"spicy": {}})
        execute("pipeline.yaml", write_config(project, config), run_id="x")


def test_missing_image_is_named(project: Path, engine: str) -> None:
    config = container_config("localhost/no-such-image:1", project, overrides={"spicy": {}})
    with pytest.raises(ConfigurationError, match="image 'localhost/no-such-image:1' does not exist"):
        execute("pipeline.yaml", write_config(project, config), run_id="x")


def test_image_without_magnus_is_named(project: Path, engine: str, base_image: str) -> None:
    config = container_config(base_image, project, overrides={"spicy": {}})
    with pytest.raises(ConfigurationError, match="cannot run `magnus`"):
        execute("pipeline.yaml", write_config(project, config), run_id="x")


def test_a_store_containers_cannot_share_is_refused(project: Path, image: str) -> None:
    config = container_config(image, project, overrides={"spicy": {}})
    config["run_log_store"] = {"type": "buffered"}
    with pytest.raises(ConfigurationError, match="keeps its state in one process"):
        execute("pipeline.yaml", write_config(project, config), run_id="x")


def test_sdk_pipelines_run_in_containers(project: Path, image: str) -> None:
    """An SDK pipeline has no YAML file: the executor writes one where the containers can read it."""
    from magnus import Pipeline, Task

    write_config(project, container_config(image, project))
    where = Task(name="where", command="where.where", terminate_with_success=True)
    run_log = Pipeline(start_at=where, steps=[where]).execute(configuration_file="config.yaml", run_id="sdk-run")
    assert run_log is not None and run_log.status == "SUCCESS"
    assert run_log.parameters["in_container"] is True
    assert (project / ".magnus" / "sdk-run-pipeline.yaml").is_file()


def test_the_engine_answers(engine: str) -> None:
    import docker

    client = docker.from_env()
    assert client.ping() is True
    assert client.version()["ApiVersion"]


def test_a_cache_filled_by_a_local_run_is_hit_by_a_container_run(project: Path, image: str) -> None:
    """The cache key is the same wherever the step runs: a local run fills the cache, a run in
    containers reuses it (decided in the step's container), and a changed parameter runs there."""
    (project / "cached.py").write_text(
        "import os\n\n\ndef twice(n: int) -> dict:\n"
        "    return {'doubled': 2 * n, 'ran_in_container': os.environ.get('WHERE') == 'container'}\n"
    )
    write_pipeline(project, {"twice": task("cached.twice", cache=True)}, "twice")
    (project / "params.yaml").write_text("n: 3\n")
    local = execute(
        "pipeline.yaml",
        write_config(project, {"run_log_store": {"type": "file-system"}}),
        "params.yaml",
        run_id="filled",
    )
    assert local is not None and local.parameters["ran_in_container"] is False

    config = write_config(project, container_config(image, project, environment={"WHERE": "container"}))
    hit = execute("pipeline.yaml", config, "params.yaml", run_id="hit")
    assert hit is not None and hit.status == "SUCCESS", {k: s.message for k, s in hit.steps.items()}
    cache = hit.steps["twice"].cache
    assert cache is not None and cache.reused_from is not None and cache.reused_from.run_id == "filled"
    assert cache.key == local.steps["twice"].cache.key  # type: ignore[union-attr]
    assert hit.parameters == {"n": 3, "doubled": 6, "ran_in_container": False}  # restored, not run

    (project / "params.yaml").write_text("n: 4\n")
    miss = execute("pipeline.yaml", config, "params.yaml", run_id="miss")
    assert miss is not None and miss.steps["twice"].cache is not None and miss.steps["twice"].cache.reused_from is None
    assert miss.parameters == {"n": 4, "doubled": 8, "ran_in_container": True}
