"""Steps cached by what they read: a change in any input is a miss, the same inputs a hit.

Real ``magnus execute --cache`` processes in a project folder, on each store that keeps an index
(file-system always; chunked-fs and db on SQLite when installed). Each run after the first changes
one thing and the test reads which steps were reused from the run log:

- ``produce`` (python, in ``cached_produce.py``, importing the project module ``cached_helper``)
  binds ``n``, puts ``data/made.txt``;
- ``consume`` (python, in ``cached_consume.py``) binds ``m`` and gets ``data/made.txt``;
- ``shout`` (shell) reads every parameter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

from magnus.plugins import is_installed
from magnus.testing.pipelines import read_run_log, run_magnus

pytestmark = pytest.mark.slow

HELPER = "def twice(n):\n    return 2 * n\n"
PRODUCE = """
from pathlib import Path

import cached_helper


def produce(n: int) -> dict:
    Path("data").mkdir(exist_ok=True)
    Path("data/made.txt").write_text(f"{n % 2}\\n")
    return {"m": cached_helper.twice(n) % 4}
"""
CONSUME = """
from pathlib import Path


def consume(m: int) -> dict:
    return {"total": m + len(Path("data/made.txt").read_text())}
"""


def pipeline(produce_extra: str = "", shell: str = "echo $MAGNUS_PRM_n", shout_extra: str = "") -> str:
    """The pipeline; ``*_extra``: more fields of that step (YAML lines indented by 4)."""
    return PIPELINE.format(produce_extra=produce_extra, shell=shell, shout_extra=shout_extra)


PIPELINE = """
dag:
  start_at: produce
  steps:
    produce:
      type: task
      command: cached_produce.produce
      catalog: {{put: [data/made.txt]}}
      next: consume{produce_extra}
    consume:
      type: task
      command: cached_consume.consume
      catalog: {{get: [data/made.txt]}}
      next: shout
    shout:
      type: task
      command_type: shell
      command: {shell}
      next: success{shout_extra}
    success: {{type: success}}
    fail: {{type: fail}}
"""


STORES = {
    "file-system": "run_log_store: {type: file-system}\n",
    "chunked-fs": "run_log_store: {type: chunked-fs}\n",
    # an absolute path: a process keeps one engine per URL, a relative one would be another test's
    "db": "run_log_store: {type: db, config: {connection_string: 'sqlite:///{folder}/runs.db'}}\n",
}


def _store(name: str) -> object:
    return pytest.param(
        name, marks=pytest.mark.skipif(not is_installed("run_log_store", name), reason=f"{name} is not installed here")
    )


@pytest.fixture(params=[_store(name) for name in STORES])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    (tmp_path / "cached_helper.py").write_text(HELPER)
    (tmp_path / "cached_produce.py").write_text(PRODUCE)
    (tmp_path / "cached_consume.py").write_text(CONSUME)
    (tmp_path / "pipeline.yaml").write_text(pipeline())
    (tmp_path / "params.yaml").write_text("n: 3\nunread: 1\n")
    catalog = "catalog: {type: file-system}\n" if is_installed("catalog", "file-system") else ""
    (tmp_path / "config.yaml").write_text(STORES[request.param].replace("{folder}", str(tmp_path)) + catalog)
    if not catalog:
        pytest.skip("magnus-catalog-fs is not installed here")
    return tmp_path


def run(project: Path, run_id: str, *extra: str) -> Dict[str, dict]:
    """``magnus execute --cache`` (unless ``extra`` says otherwise); the run's steps, by name."""
    flags = [flag for flag in extra if flag != "--no-cache"]
    cache = [] if "--no-cache" in extra else ["--cache"]
    arguments = ["execute", "-c", "config.yaml", "-p", "params.yaml", "--run-id", run_id, "-q", *cache, *flags]
    result = run_magnus(*arguments, cwd=project, isolated=True)
    assert result.returncode == 0, result.stderr
    return _steps(project, run_id)


def _steps(project: Path, run_id: str) -> Dict[str, dict]:
    config = (project / "config.yaml").read_text()
    if "file-system" in config.splitlines()[0]:
        return dict(read_run_log(project, run_id)["steps"])
    import contextlib

    import magnus

    with contextlib.chdir(project):  # the store's folder (or database file) is relative to the project
        return {name: step.model_dump() for name, step in magnus.Run(run_id, config="config.yaml").log.steps.items()}


def reused(steps: Dict[str, dict]) -> List[str]:
    """The steps restored from an earlier execution, in order."""
    return [name for name, step in steps.items() if (step.get("cache") or {}).get("reused_from")]


TASKS = ["produce", "consume", "shout"]


def test_each_component_of_a_key_misses_when_changed_and_hits_when_not(project: Path) -> None:
    first = run(project, "r1")
    assert reused(first) == []
    assert all(first[name]["cache"]["key"] for name in TASKS)
    assert "cached_helper.py" in first["produce"]["cache"]["components"]["code"]

    same = run(project, "r2")  # same code, parameters, files, settings: every step a hit
    assert reused(same) == TASKS
    assert [same[name]["cache"]["key"] for name in TASKS] == [first[name]["cache"]["key"] for name in TASKS]
    assert same["produce"]["cache"]["reused_from"]["run_id"] == "r1"
    assert json.loads(json.dumps(same["consume"]["attempts"][-1]["output_parameters"])) == {"total": 4}

    # an imported project module: produce runs again; it puts the same content and sets the same
    # parameter, so consume (in another module) is still a hit; shout reads every parameter but none changed
    (project / "cached_helper.py").write_text("def twice(n):\n    return n + n\n")
    helper = run(project, "r3")
    assert reused(helper) == ["consume", "shout"]

    # the function's own module
    (project / "cached_consume.py").write_text(CONSUME + "\n# changed\n")
    assert reused(run(project, "r4")) == ["produce", "shout"]

    # a parameter no function binds: only the shell step (which may read any) runs again
    (project / "params.yaml").write_text("n: 3\nunread: 2\n")
    assert reused(run(project, "r5")) == ["produce", "consume"]

    # a parameter produce binds: produce runs, its file changes content (n % 2), so consume runs
    (project / "params.yaml").write_text("n: 4\nunread: 2\n")
    changed = run(project, "r6")
    assert reused(changed) == []
    assert changed["consume"]["cache"]["components"]["files"] != first["consume"]["cache"]["components"]["files"]

    # back to n: 3: every step a hit again, from the runs that executed them with those inputs
    (project / "params.yaml").write_text("n: 3\nunread: 2\n")
    assert reused(run(project, "r7")) == TASKS

    # settings (the task's overrides), and the shell command itself
    (project / "pipeline.yaml").write_text(pipeline(shell="echo $MAGNUS_PRM_n; true"))
    assert reused(run(project, "r8")) == ["produce", "consume"]
    (project / "pipeline.yaml").write_text(pipeline(produce_extra="\n      overrides: {argo: big}"))
    assert reused(run(project, "r9")) == ["consume", "shout"]


def test_cache_false_wins_over_the_flag_and_no_flag_reuses_nothing(project: Path) -> None:
    run(project, "r1")
    assert reused(run(project, "r2", "--no-cache")) == []  # keys recorded, nothing reused
    (project / "pipeline.yaml").write_text(pipeline(shout_extra="\n      cache: false"))
    steps = run(project, "r3")
    assert reused(steps) == ["produce", "consume"]
    assert steps["shout"]["cache"]["enabled"] is False


# ---- magnus runs why: what a person reads ------------------------------------------------------------
@pytest.fixture
def git_project(tmp_path: Path) -> Path:
    """The project on the file-system store, committed to git (so the earlier code can be shown)."""
    import subprocess

    if not is_installed("catalog", "file-system"):
        pytest.skip("magnus-catalog-fs is not installed here")
    (tmp_path / "cached_helper.py").write_text(HELPER)
    (tmp_path / "cached_produce.py").write_text(PRODUCE)
    (tmp_path / "cached_consume.py").write_text(CONSUME)
    (tmp_path / "pipeline.yaml").write_text(pipeline())
    (tmp_path / "params.yaml").write_text("n: 3\nunread: 1\n")
    (tmp_path / "config.yaml").write_text(STORES["file-system"] + "catalog: {type: file-system}\n")
    (tmp_path / ".gitignore").write_text(".run_log_store/\n.catalog/\ndata/\n__pycache__/\n")
    for command in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", *command], cwd=tmp_path, check=True, capture_output=True)
    return tmp_path


def why(project: Path, run_id: str, step: str, *extra: str) -> str:
    result = run_magnus("runs", "why", run_id, step, "-c", "config.yaml", *extra, cwd=project, isolated=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_why_names_the_execution_reused_and_each_kind_of_miss(git_project: Path) -> None:
    project = git_project
    run(project, "r1")
    assert (
        why(project, "r1", "produce")
        == "run r1, step produce: ran: no earlier execution of this step was recorded in this store\n"
    )
    run(project, "r2")
    hit = why(project, "r2", "consume").splitlines()
    assert hit[0].startswith("run r2, step consume: reused (cache hit): from run r1, step consume at 20")
    assert hit[1].endswith(": same code, parameters, input files, objects and settings")
    shown = run_magnus("runs", "show", "r2", "-c", "config.yaml", cwd=project, isolated=True).stdout
    assert "reused from run r1, step consume (why: magnus runs why r2 consume)" in shown

    (project / "cached_consume.py").write_text(CONSUME.replace("m + len", "m * 1 + len"))  # not committed
    run(project, "r3")
    code = why(project, "r3", "consume").splitlines()
    assert code[0] == "run r3, step consume: ran (cache miss): differs from run r2, step consume in"
    assert code[1].startswith("  code cached_consume.py: ")
    assert '    -    return {"total": m + len(Path("data/made.txt").read_text())}' in code
    assert '    +    return {"total": m * 1 + len(Path("data/made.txt").read_text())}' in code

    (project / "params.yaml").write_text("n: 4\nunread: 1\n")
    run(project, "r4")
    assert why(project, "r4", "produce").splitlines()[1:] == ["  parameter n: 3 -> 4"]
    consume = why(project, "r4", "consume").splitlines()
    assert consume[1] == "  parameter m: 2 -> 0"
    assert consume[2].startswith("  input file data/made.txt: ")

    (project / "pipeline.yaml").write_text(pipeline(produce_extra="\n      overrides: {argo: big}"))
    run(project, "r5")
    assert why(project, "r5", "produce").splitlines()[1:] == ['  setting overrides: {} -> {"argo": "big"}']
    as_json = json.loads(why(project, "r5", "produce", "--json"))
    assert as_json["outcome"] == "ran" and as_json["compared_with"]["run_id"] == "r4"
    assert as_json["differences"] == [
        {"component": "setting", "name": "overrides", "old": "{}", "new": '{"argo": "big"}', "diff": []}
    ]

    run(project, "r6", "--no-cache")
    assert why(project, "r6", "produce") == (
        "run r6, step produce: ran: caching was off for this step (no --cache, or cache: false); "
        "its inputs were those of run r5, step produce\n"
    )
    assert why(project, "r6", "success").startswith("run r6, step success: no key: the step has no cache key")


def test_nothing_secret_in_a_cache_key_or_an_explanation(tmp_path: Path) -> None:
    """A parameter holding a secret's value (masked when recorded, as every secret): neither the value
    nor a hash of it is in the run log, the index or what ``runs why`` prints."""
    import hashlib

    if not is_installed("secrets", "env-secrets-manager"):
        pytest.skip("magnus-secrets is not installed here")
    secret, other = "hunter2-very-secret-value", "another-secret-value-42"
    (tmp_path / "cached_secret.py").write_text("def login(token: str) -> None:\n    assert token\n")
    steps = {"login": {"type": "task", "command": "cached_secret.login", "next": "success"}}
    (tmp_path / "pipeline.yaml").write_text(
        json.dumps(
            {"dag": {"start_at": "login", "steps": {**steps, "success": {"type": "success"}, "fail": {"type": "fail"}}}}
        )
    )
    (tmp_path / "config.yaml").write_text(
        "run_log_store: {type: file-system}\nsecrets: {type: env-secrets-manager, config: {prefix: SECRET_}}\n"
    )
    (tmp_path / "params.yaml").write_text("{}\n")
    for run_id, value in (("s1", secret), ("s2", other)):
        environment = {"SECRET_token": value, "MAGNUS_PRM_token": json.dumps(value)}
        arguments = ["execute", "-c", "config.yaml", "-p", "params.yaml", "--run-id", run_id, "-q", "--cache"]
        result = run_magnus(*arguments, cwd=tmp_path, env=environment, isolated=True)
        assert result.returncode == 0, result.stderr
    explained = "".join(
        why(tmp_path, run_id, "login", *extra) for run_id in ("s1", "s2") for extra in ((), ("--json",))
    )
    assert "run s1, step login: ran" in explained
    logs = "".join(path.read_text() for path in (tmp_path / ".run_log_store").rglob("*") if path.is_file())
    for value in (secret, other):
        for form in (value, hashlib.sha256(json.dumps(value).encode()).hexdigest()):
            assert form not in logs and form not in explained


OBJECT_STEPS = """
def make(seed: int):
    return {"weights": [seed, seed + 1]}


def score(model) -> tuple:
    return float(sum(model["weights"])), 0.5


def check(model, score: float) -> None:
    assert sum(model["weights"]) == score
"""


def test_objects_are_inputs_and_outputs_of_the_cache_from_the_sdk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Task(cache=...)`` and ``execute(cache=True)``: a reused step's objects are restored for later
    steps (here kept outside any catalog), and an object whose content changed is a miss."""
    from magnus import Pipeline, Task, metric, pickled

    monkeypatch.chdir(tmp_path)
    (tmp_path / "object_steps.py").write_text(OBJECT_STEPS)
    (tmp_path / "config.yaml").write_text("run_log_store: {type: file-system}\ncatalog: {type: do-nothing}\n")
    make = Task(name="make", command="object_steps.make", returns=[pickled("model")])
    score = Task(name="score", command="object_steps.score", returns=["score", metric("quality")])
    check = Task(name="check", command="object_steps.check", cache=False, terminate_with_success=True)
    make >> score >> check
    pipeline = Pipeline(steps=[make, score, check])

    def steps(run_id: str, seed: int) -> Dict[str, Any]:
        (tmp_path / "params.yaml").write_text(f"seed: {seed}\n")
        run_log = pipeline.execute(
            configuration_file="config.yaml", parameters_file="params.yaml", run_id=run_id, quiet=True, cache=True
        )
        assert run_log is not None and run_log.status == "SUCCESS", run_log and run_log.steps
        assert run_log.steps["score"].user_defined_metrics == {"quality": 0.5}  # kept when reused too
        return {name: step.cache for name, step in run_log.steps.items() if step.cache is not None}

    first = steps("o1", 1)
    assert [name for name, cache in steps("o2", 1).items() if cache.reused_from] == ["make", "score"]
    assert (tmp_path / ".magnus" / "objects" / "o2" / "model.pickle").is_file()  # restored: check read it
    changed = steps("o3", 2)
    assert not any(cache.reused_from for cache in changed.values())
    assert changed["score"].components["objects"]["model"] != first["score"].components["objects"]["model"]


MAP_PIPELINE = """
dag:
  start_at: each
  steps:
    each:
      type: map
      iterate_on: items
      iterate_as: item
      branch:
        start_at: same
        steps:
          same:
            type: task
            command: map_steps.same
            cache: true
            next: success
          success: {type: success}
          fail: {type: fail}
      next: success
    success: {type: success}
    fail: {type: fail}
"""


def test_map_items_never_reuse_each_other_but_reuse_their_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An item's step that reads nothing of its item still keeps what it puts at its position: the
    key holds the position, so items never reuse one another; a later run reuses each item's own."""
    from magnus.entrypoints import execute

    monkeypatch.chdir(tmp_path)
    (tmp_path / "map_steps.py").write_text(
        "import magnus\n\n\ndef same() -> None:\n    magnus.put_object(1, 'thing')\n"
    )
    (tmp_path / "pipeline.yaml").write_text(MAP_PIPELINE)
    (tmp_path / "params.yaml").write_text("items: [a, b, c]\n")
    (tmp_path / "config.yaml").write_text("run_log_store: {type: file-system}\ncatalog: {type: do-nothing}\n")

    def reused_items(run_id: str) -> List[str]:
        run_log = execute("pipeline.yaml", "config.yaml", "params.yaml", run_id=run_id)
        assert run_log is not None and run_log.status == "SUCCESS"
        found = []
        for branch in run_log.steps["each"].branches.values():
            for step in branch.steps.values():
                if step.cache is not None and step.cache.reused_from is not None:
                    found.append(f"{step.internal_name}<-{step.cache.reused_from.step}")
        return found

    assert reused_items("m1") == []
    assert reused_items("m2") == ["each.a.same<-each.a.same", "each.b.same<-each.b.same", "each.c.same<-each.c.same"]
