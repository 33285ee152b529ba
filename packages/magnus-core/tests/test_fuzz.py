"""Fuzzing ``magnus execute`` with a generated corpus of mutated pipelines, configs and parameter files.

Each case starts from a small valid project (a pipeline of stubs, shell tasks, a parallel step and
a map; a config; a parameters file) and mutates one of its files, either as bytes (flips,
truncations, NUL and non-UTF-8 bytes, duplicated or deleted lines, anchors and aliases) or as data
(a key deleted or duplicated, a value replaced by one of the wrong type, a huge number, deep
nesting, names that would be paths). The corpus is seeded: a failure names its case number, and
``FUZZ_CASE=<n>`` runs that case alone.

Every case runs ``magnus execute`` in this process through click's runner (a sample of them in a
real process too) and must end the way the CLI promises:

- exit code 0, 1 or 2 only;
- no ``Error: internal error`` and no traceback on stderr (without ``--log-level DEBUG``), except
  the traceback of a task's own failure, which the step prints as part of its execution log;
- within :data:`SECONDS_PER_CASE`, and without growing this process by more than
  :data:`MEMORY_PER_CASE`.
"""

from __future__ import annotations

import copy
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest
import yaml
from click.testing import CliRunner

from magnus.cli import cli
from magnus.terminal import for_terminal
from magnus.yaml_file import parse_yaml

pytestmark = pytest.mark.slow

SEED = 18
CASES = 300
SUBPROCESS_SAMPLE = 12
SECONDS_PER_CASE = 5
MEMORY_PER_CASE = 256 * 1024 * 1024

TERMINALS = {"success": {"type": "success"}, "fail": {"type": "fail"}}
BRANCH = {
    "start_at": "each",
    "steps": {"each": {"type": "task", "command_type": "shell", "command": "echo $MAGNUS_PRM_item", "next": "success"}}
    | TERMINALS,
}
PIPELINE: Dict[str, Any] = {
    "dag": {
        "description": "fuzzed",
        "start_at": "first",
        "steps": {
            "first": {"type": "stub", "next": "say", "anything": 1},
            "say": {
                "type": "task",
                "command_type": "shell",
                "command": "echo hello; export MAGNUS_PRM_said=1",
                "next": "both",
                "catalog": {"put": ["out.txt"]},
            },
            "both": {
                "type": "parallel",
                "branches": {
                    "left": {"start_at": "l", "steps": {"l": {"type": "stub", "next": "success"}} | TERMINALS},
                    "right": {"start_at": "r", "steps": {"r": {"type": "stub", "next": "success"}} | TERMINALS},
                },
                "next": "fan",
            },
            "fan": {"type": "map", "iterate_on": "items", "iterate_as": "item", "branch": BRANCH, "next": "success"},
        }
        | TERMINALS,
    }
}
CONFIG: Dict[str, Any] = {
    "executor": {"type": "local", "config": {}},
    "run_log_store": {"type": "file-system", "config": {"log_folder": ".run_log_store"}},
    "catalog": {"type": "do-nothing"},
    "secrets": {"type": "do-nothing"},
    "experiment_tracker": {"type": "do-nothing"},
}
PARAMETERS: Dict[str, Any] = {"items": ["a", "b"], "rate": 0.5, "nested": {"x": [1, 2]}, "name": "run"}
FILES = {"pipeline.yaml": PIPELINE, "config.yaml": CONFIG, "params.yaml": PARAMETERS}

# Values of the wrong type, or of the right type that would hurt: names that are paths, control
# characters, huge and deep values. None of them names a place outside the project's folder.
NASTY: List[Any] = [
    None,
    True,
    0,
    -1,
    1e308,
    10**40,
    float("nan"),
    "",
    " ",
    ".",
    "%",
    "a.b",
    "x" * 5000,
    "\x00",
    "a\x00b",
    "\x1b[31m",
    "é",
    "pipeline.yaml",  # a file where a folder is expected
    "pipeline.yaml/under",  # a folder under a file
    "sub/dir",
    "/abs",
    "../x",
    "*",
    "**/*",
    "$(echo no)",
    # names not seen as they are, and text that would drive a terminal
    "\u202e",
    "pay\u202etxt.exe",
    "a\u200bb",
    "a\u2028b",
    "\ufeff",
    "\u00a0",
    "   ",
    "\x1b]0;owned\x07",
    "x\nrun r SUCCESS",
    "\x9b31m",
    # map items magnus 0.5.1 named alike
    [1, "1", 0.5, "0.5", True, "True", None, "None"],
    ["a", "a", "a~string"],
    [],
    {},
    [None],
    ["../x", "/", "\x00", "", " ", ".", "a/b", 1, None, {"k": "v"}],
    {"type": "stub"},
    {"type": "nope"},
    {"type": "task"},
    {"type": "task", "command_type": "nope", "command": "x"},
    {"type": "map"},
    {"type": "parallel", "branches": {}},
    {"type": "dag", "dag_definition": "pipeline.yaml"},
    {"type": "dag", "dag_definition": "params.yaml"},
    {"start_at": "nowhere", "steps": {}},
]
# Characters that would drive a terminal or hide text: what magnus prints shows them escaped.
TERMINAL_DRIVING = ("\x1b", "\x07", "\x9b", "\u202e", "\u200b", "\u2028", "\ufeff", "\x00")
TYPE_NAMES = ["local", "mocked", "buffered", "file-system", "do-nothing", "nope", "", "stub", "task", "map"]


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


def paths(data: Any, prefix: Tuple[Any, ...] = ()) -> Iterator[Tuple[Any, ...]]:
    """Every key path in ``data`` (mappings and lists)."""
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from paths(value, (*prefix, index))


def replace_at(data: Any, path: Tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    *parents, last = path
    target = data
    for key in parents:
        target = target[key]
    target[last] = value
    return data


# ---- data mutations (valid YAML, wrong content) ---------------------------------------------------------
def swap_value(rng: random.Random, data: Any) -> Any:
    path = rng.choice(list(paths(data)))
    pool = [*NASTY, nested(rng.choice([20, 99, 150])), rng.choice(TYPE_NAMES)]
    return replace_at(data, path, copy.deepcopy(rng.choice(pool)))


def delete_key(rng: random.Random, data: Any) -> Any:
    keyed = [path for path in paths(data) if path]
    path = rng.choice(keyed)
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return data


def add_key(rng: random.Random, data: Any) -> Any:
    mappings = [path for path in paths(data) if isinstance(_at(data, path), dict)]
    target = _at(data, rng.choice(mappings))
    key = rng.choice(
        [
            "unknown",
            "type",
            "next",
            "config",
            1,
            "steps",
            "on_failure",
            "max_workers",
            "\x00",
            "\u202e",
            "a\u200bb",
            " ",
        ]
    )
    target[key] = copy.deepcopy(rng.choice(NASTY))
    return data


def _at(data: Any, path: Tuple[Any, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


DATA_MUTATIONS: List[Callable[[random.Random, Any], Any]] = [swap_value, swap_value, delete_key, add_key]


def dumped(data: Any) -> bytes:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode("utf-8")


# ---- byte mutations (YAML or not) ----------------------------------------------------------------------
def flip_bytes(rng: random.Random, raw: bytes) -> bytes:
    mutated = bytearray(raw)
    for _ in range(rng.randint(1, 4)):
        position = rng.randrange(len(mutated))
        mutated[position] = rng.choice([0x00, 0xFF, 0xC3, ord(":"), ord("-"), ord("&"), ord("*"), ord("["), 0x0A])
    return bytes(mutated)


def truncate(rng: random.Random, raw: bytes) -> bytes:
    return raw[: rng.randrange(len(raw))]


def shuffle_lines(rng: random.Random, raw: bytes) -> bytes:
    lines = raw.splitlines(keepends=True)
    index = rng.randrange(len(lines))
    if rng.random() < 0.5:
        lines.insert(index, lines[index])  # a duplicated key, mostly
    else:
        del lines[index]
    return b"".join(lines)


def indent(rng: random.Random, raw: bytes) -> bytes:
    lines = raw.splitlines(keepends=True)
    index = rng.randrange(len(lines))
    lines[index] = rng.choice([b"  ", b"\t", b""]) + lines[index].lstrip()
    return b"".join(lines)


def aliases(rng: random.Random, raw: bytes) -> bytes:
    bombs = [
        b'b0: &b0 ["x","x","x","x","x","x","x","x","x","x"]\n'
        + b"".join(f"b{n}: &b{n} [{','.join([f'*b{n - 1}'] * 10)}]\n".encode() for n in range(1, 8)),
        b"loop: &loop [1, *loop]\n",
        b"base: &base {a: 1}\nmerged: {<<: *base, b: 2}\nagain: *base\n",
        b"undefined: *nothing\n",
    ]
    return raw + b"\n" + rng.choice(bombs)


def typed(rng: random.Random, raw: bytes) -> bytes:
    values = [
        b"2024-01-01",
        b"!!binary aGVsbG8=",
        b"!!set {a, b}",
        b"!!python/object:os.system x",
        b"2001-12-14t21:59:43.10-05:00",
        b"!!omap [a: 1]",
        b"1" * 5000,
        b"0x" + b"f" * 3000,
        b"~",
        b".inf",
        b"!custom 1",
    ]
    return raw + b"\nextra_" + str(rng.randrange(100)).encode() + b": " + rng.choice(values) + b"\n"


def not_utf8(rng: random.Random, raw: bytes) -> bytes:
    position = rng.randrange(len(raw))
    return raw[:position] + rng.choice([b"\xff", b"\xc3", b"\xfe\xff", "é".encode("latin-1")]) + raw[position:]


BYTE_MUTATIONS: List[Callable[[random.Random, bytes], bytes]] = [
    flip_bytes,
    truncate,
    shuffle_lines,
    indent,
    aliases,
    typed,
    not_utf8,
]


def case(number: int) -> Dict[str, bytes]:
    """The files of case ``number``: one of them mutated, the others as they are."""
    rng = random.Random(SEED * 100_003 + number)
    files = {name: dumped(data) for name, data in FILES.items()}
    target = rng.choice(list(FILES))
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        if rng.random() < 0.55:
            try:  # read as magnus reads it: no alias bombs, no recursive aliases
                data = parse_yaml(files[target].decode("utf-8"), target, ValueError)
            except (ValueError, UnicodeDecodeError):
                data = None
            if data:
                files[target] = dumped(rng.choice(DATA_MUTATIONS)(rng, data))
                continue
        files[target] = rng.choice(BYTE_MUTATIONS)(rng, files[target])
    return files


# ---- running a case ------------------------------------------------------------------------------------
class TooSlow(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise TooSlow(f"a case took more than {SECONDS_PER_CASE} s")


def max_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


ARGS = ["execute", "-f", "pipeline.yaml", "-c", "config.yaml", "-p", "params.yaml"]


def check_outcome(number: int, exit_code: Any, stderr: str) -> None:
    where = f"case {number} (FUZZ_CASE={number})"
    assert exit_code in (0, 1, 2), f"{where}: exit code {exit_code!r}: {stderr[-2000:]}"
    assert "internal error" not in stderr, f"{where}: {stderr[-2000:]}"
    raw = [character for character in TERMINAL_DRIVING if character in stderr]
    assert not raw, f"{where}: {raw} reached the terminal: {stderr[-2000:]!r}"
    if "Traceback" in stderr:
        # A task's own failure: the step prints its traceback into its execution log, and the run
        # ends FAIL naming the step and the task's error.
        last = [line for line in stderr.splitlines() if line.startswith("Error:")][-1:]
        assert exit_code == 1 and last and "ended FAIL at step" in last[0] and "TaskFailedError" in last[0], (
            f"{where}: a traceback that is not a task's failure: {stderr[-3000:]}"
        )


def run_in_process(number: int, project: Path) -> None:
    runner = CliRunner()
    started, rss_before = time.monotonic(), max_rss()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(SECONDS_PER_CASE * 4)  # the hard stop; the bound itself is checked below
    try:
        result = runner.invoke(cli, ARGS, catch_exceptions=True, env={"MAGNUS_DEBUG": ""})
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    elapsed = time.monotonic() - started
    exception = result.exception
    if exception is not None and not isinstance(exception, SystemExit):
        raise AssertionError(f"case {number}: {type(exception).__name__} escaped the CLI: {exception}") from exception
    check_outcome(number, result.exit_code, result.stderr)
    assert elapsed < SECONDS_PER_CASE, f"case {number} (FUZZ_CASE={number}) took {elapsed:.1f} s"
    grown = max_rss() - rss_before
    assert grown < MEMORY_PER_CASE, f"case {number} (FUZZ_CASE={number}) grew the process by {grown >> 20} MiB"


def write_project(project: Path, files: Dict[str, bytes]) -> None:
    for name, raw in files.items():
        (project / name).write_bytes(raw)
    (project / "out.txt").write_text("out\n")


def selected_cases() -> List[int]:
    chosen = os.environ.get("FUZZ_CASE", "")
    return [int(chosen)] if chosen else list(range(CASES))


def test_the_corpus_is_varied_and_seeded() -> None:
    corpus = [case(number) for number in range(CASES)]
    assert corpus == [case(number) for number in range(CASES)]
    assert len({tuple(sorted(files.items())) for files in corpus}) > CASES * 0.9


def test_mutated_inputs_end_in_a_clean_exit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failures: List[str] = []
    for number in selected_cases():
        project = tmp_path / f"case{number}"
        project.mkdir()
        write_project(project, case(number))
        monkeypatch.chdir(project)
        try:
            run_in_process(number, project)
        except (AssertionError, TooSlow) as exc:
            failures.append(str(exc).splitlines()[0][:600])
    assert not failures, f"{len(failures)} cases failed:\n" + "\n".join(failures)


def test_a_sample_in_real_processes(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    failures: List[str] = []
    environment = {key: value for key, value in os.environ.items() if key != "MAGNUS_DEBUG"}
    for number in rng.sample(range(CASES), SUBPROCESS_SAMPLE):
        project = tmp_path / f"case{number}"
        project.mkdir()
        write_project(project, case(number))
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "magnus", *ARGS],
            cwd=project,
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
            timeout=60,
            env=environment,
        )
        try:
            check_outcome(number, result.returncode, result.stderr)
            # A process also starts python and imports magnus: a looser bound than in-process.
            assert time.monotonic() - started < SECONDS_PER_CASE * 3, f"case {number} was slow"
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0][:600])
    assert not failures, "\n".join(failures)


# ---- names, tags and map items -------------------------------------------------------------------------
# Text that is not seen as it is: control, invisible and bidirectional characters, separators, spaces only.
HIDDEN_TEXT = [
    "\u202e",
    "pay\u202etxt",
    "a\u200bb",
    "\u200d",
    "a\u2028b",
    "a\u2029b",
    "\ufeffx",
    "x\u2066y\u2069",
    "a\u00a0b",
    "a\u3000b",
    " ",
    "   ",
    "a\x1b[2Jb",
    "a\x9bb",
    "a\nb",
    "a\rb",
    "a\tb",
    "tag\U000e0041",
]


def _hidden(rng: random.Random) -> str:
    """One of :data:`HIDDEN_TEXT`, alone or inside ordinary text."""
    text = rng.choice(HIDDEN_TEXT)
    return text if text.strip(" ") == "" or rng.random() < 0.5 else f"{rng.choice(['run', 'x y', 'é'])}{text}z"


@pytest.mark.parametrize("where", ["step", "branch", "run id", "tag"])
def test_names_and_tags_not_seen_as_they_are_are_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    rng = random.Random(f"{SEED}-{where}")
    monkeypatch.chdir(tmp_path)
    for name, data in FILES.items():
        (tmp_path / name).write_bytes(dumped(data))
    failures: List[str] = []
    for number in range(25):
        text = _hidden(rng)
        args = list(ARGS)
        if where in ("step", "branch"):
            pipeline = copy.deepcopy(PIPELINE)
            steps = pipeline["dag"]["steps"]
            if where == "step":
                steps[text] = steps.pop("first")
                pipeline["dag"]["start_at"] = text
            else:
                branches = steps["both"]["branches"]
                branches[text] = branches.pop("left")
            (tmp_path / "pipeline.yaml").write_bytes(dumped(pipeline))
        else:
            (tmp_path / "pipeline.yaml").write_bytes(dumped(PIPELINE))
            args += ["--run-id" if where == "run id" else "--tag", text]
        result = CliRunner().invoke(cli, args, catch_exceptions=True, env={"MAGNUS_DEBUG": ""})
        lines = result.stderr.strip().splitlines()
        described = f"{where} {number} {text!r}"
        if result.exit_code != 2 or len(lines) != 1 or not lines[0].startswith("Error: "):
            failures.append(f"{described}: exit {result.exit_code}: {result.stderr[-300:]!r}")
        elif for_terminal(lines[0]) != lines[0] or "must not" not in lines[0]:
            failures.append(f"{described}: {lines[0]!r}")
    assert not failures, "\n".join(failures)


# Values magnus 0.5.1 named alike (str(value)), and values that look like the names given to them.
COLLIDING_POOL: List[Any] = [
    *[0, 1, "0", "1", 0.5, "0.5", 1.0, "1.0", True, "True", False, "False", None, "None"],
    *["1~number", "1~number~2", "a", "a~string", [1], "[1]", {"k": 1}, "{'k': 1}", "", " ", "../x", "\x1b"],
]


def test_map_items_of_colliding_types_get_distinct_stable_names() -> None:
    from magnus.map_position import item_names
    from magnus.names import encode_file_name

    rng = random.Random(SEED)
    for _ in range(2000):
        values = [copy.deepcopy(rng.choice(COLLIDING_POOL)) for _ in range(rng.randint(0, 12))]
        renamed = item_names(values)
        names = [renamed.get(index, str(value)) for index, value in enumerate(values)]
        where = f"{values!r} -> {names!r}"
        assert len(set(names)) == len(names), where
        assert len({encode_file_name(name) for name in names}) == len(names), where
        assert item_names(copy.deepcopy(values)) == renamed, f"not stable: {where}"
        plain = [str(value) for value in values]
        for index, value in enumerate(values):
            if plain.count(str(value)) == 1:
                assert names[index] == str(value), f"an item named alike by nobody keeps its name: {where}"


def test_maps_over_colliding_items_keep_every_item(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The number 1 fails (its JSON is ``1``; ``"1"``, ``true`` and ``1.0`` are not): the run fails exactly
    when the list holds it, and the run log holds one branch per item."""
    import json

    rng = random.Random(f"{SEED}-maps")
    monkeypatch.chdir(tmp_path)
    fan = copy.deepcopy(PIPELINE["dag"]["steps"]["fan"])
    fan["branch"]["steps"]["each"]["command"] = 'test "$MAGNUS_PRM_item" != 1'
    pipeline = {"dag": {"start_at": "fan", "steps": {"fan": fan} | TERMINALS}}
    (tmp_path / "pipeline.yaml").write_bytes(dumped(pipeline))
    (tmp_path / "config.yaml").write_bytes(dumped(CONFIG))
    failures: List[str] = []
    for number in range(8):
        values = [copy.deepcopy(rng.choice(COLLIDING_POOL)) for _ in range(rng.randint(1, 8))]
        (tmp_path / "params.yaml").write_text(json.dumps({"items": values}))
        run_id = f"maps-{number}"
        result = CliRunner().invoke(cli, [*ARGS, "--run-id", run_id], catch_exceptions=True, env={"MAGNUS_DEBUG": ""})
        fails = any(value == 1 and type(value) is int for value in values)
        kept = tmp_path / ".run_log_store" / f"{run_id}.json"
        if not kept.is_file():
            failures.append(f"{values!r}: exit {result.exit_code}, no run log: {result.stderr[-300:]!r}")
            continue
        log = json.loads(kept.read_text())
        branches = log["steps"]["fan"]["branches"]
        if result.exit_code != (1 if fails else 0) or len(branches) != len(values):
            failures.append(f"{values!r}: exit {result.exit_code}, branches {sorted(branches)}")
    assert not failures, "\n".join(failures)


# ---- parameter files, MAGNUS_PRM_ variables and the values they hold ------------------------------------
# Names a variable cannot have, or that only look odd; values JSON has no word for or nesting deep.
# Each with whether magnus must refuse it.
PARAMETER_NAMES: List[Tuple[str, bool]] = [
    *[("a", False), ("é", False), ("a b", False), ("-x", False), ("1", False), ("MAGNUS_PRM_x", False)],
    *[("a=b", True), ("=", True), ("x" * 300, True)],
]
PARAMETER_VALUES: List[Tuple[str, bool]] = [  # YAML text of one value
    *[("1", False), ("'x'", False), ("null", False), ("'\\x1b[2J'", False), ("[" * 90 + "]" * 90, False)],
    *[(".nan", True), (".inf", True), ("-.inf", True), ("[.nan]", True), ("{k: -.inf}", True), ("1e400", True)],
    *[("[" * 150 + "]" * 150, True), ("{a: {b: {c: [1, {d: .NaN}]}}}", True), ("!!python/object:object {}", True)],
]
VARIABLE_VALUES: List[Tuple[str, bool]] = [  # the JSON text of a MAGNUS_PRM_ variable
    *[("1", False), ('"x"', False), ("[1", False), ("[" * 90 + "]" * 90, False)],
    *[("NaN", True), ("Infinity", True), ("[NaN]", True), ('{"k": -Infinity}', True), ("[" * 5000 + "]" * 5000, True)],
]


def _parameter_case(rng: random.Random) -> Tuple[str, Dict[str, str], bool]:
    """A parameters file's text, ``MAGNUS_PRM_`` variables, and whether one of them must be refused."""
    lines, variables, refused = ["items: [a, b]"], {}, False
    for _ in range(rng.randint(0, 3)):
        (name, bad_name), (value, bad_value) = rng.choice(PARAMETER_NAMES), rng.choice(PARAMETER_VALUES)
        lines.append(f"{json_key(name)}: {value}")
        refused = refused or bad_name or bad_value
    for _ in range(rng.randint(0, 2)):
        (name, bad_name), (value, bad_value) = rng.choice(PARAMETER_NAMES), rng.choice(VARIABLE_VALUES)
        name = name.replace("=", "_")  # an environment cannot hold it
        variables[f"MAGNUS_PRM_{name}"] = value
        refused = refused or len(name.encode()) > 255 or bad_value
    return "\n".join(lines) + "\n", variables, refused


def json_key(name: str) -> str:
    """``name`` as a YAML key (quoted: any text is a key)."""
    import json

    return json.dumps(name)


@pytest.mark.parametrize("number", range(60))
def test_hostile_parameters_are_refused_in_one_line_or_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, number: int
) -> None:
    """Before any step runs, a parameter no variable can name, NaN, infinity or a value nested too deep
    is refused in one line naming the file or the variable (exit 2); the rest run (and may fail)."""
    text, variables, refused = _parameter_case(random.Random(f"{SEED}-parameters-{number}"))
    monkeypatch.chdir(tmp_path)
    write_project(tmp_path, {name: dumped(data) for name, data in FILES.items()})
    (tmp_path / "params.yaml").write_text(text)
    monkeypatch.delenv("MAGNUS_DEBUG", raising=False)
    result = CliRunner().invoke(cli, [*ARGS, "--run-id", "p"], catch_exceptions=True, env=variables)
    where = f"case {number}: {text!r} {sorted(variables)}"
    exception = result.exception
    assert exception is None or isinstance(exception, SystemExit), f"{where}: {exception!r}"
    check_outcome(number, result.exit_code, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert (result.exit_code == 2) == refused, f"{where}: exit {result.exit_code}: {result.stderr[-2000:]}"
    if refused:
        assert len(errors) == 1, f"{where}: {result.stderr[-2000:]}"
        assert "params.yaml" in errors[0] or "MAGNUS_PRM_" in errors[0], f"{where}: {errors[0]}"
        assert not (tmp_path / ".run_log_store" / "p.json").exists(), f"{where}: a step ran"
    else:  # a run: it succeeds, or a step fails on a value it cannot use (a map over null)
        assert result.exit_code in (0, 1), f"{where}: {result.stderr[-2000:]}"
