"""Reading the YAML files users write (pipelines, configs, parameters) with errors that name them.

Every file is read once, parsed by libyaml when the wheel has it (~50x faster than pure python),
and checked before anything uses it, so a small file cannot cost a large machine:

- its size: at most :data:`PARAMETERS_LIMIT` bytes for a parameters file,
  :data:`DOCUMENT_LIMIT` for any other (pipeline, dag definition, configuration);
- its encoding: UTF-8 (a byte-order mark is allowed), else ``not UTF-8 text at byte N``;
- aliases: an anchor used inside itself is refused, and all the aliases of a file may repeat at
  most :data:`ALIASED_VALUES_LIMIT` values in all (an "alias bomb" of 1 KB would otherwise grow
  to gigabytes when the data is copied or written as JSON);
- nesting: at most :data:`DEPTH_LIMIT` levels of lists and mappings (the limit of
  :mod:`magnus.json_data`, which every parameter's value meets);
- JSON data only: what a file holds is recorded in run logs, environment variables and trackers
  as JSON. Dates and timestamps are kept as the text written (``2024-01-01``); ``!!binary`` and
  ``!!set`` values, ``.nan`` and ``.inf`` are refused, naming the line and the top-level key they
  are under; keys are text (``1:`` is the key ``"1"``).

Each problem is one line naming the file, raised as the ``error`` the caller chooses.
"""

from __future__ import annotations

import functools
import gc
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from magnus.json_data import DEPTH_LIMIT as DEPTH_LIMIT  # the YAML reader's limit too, known by this name
from magnus.json_data import too_deep

if TYPE_CHECKING:
    from yaml.nodes import Node, ScalarNode

MiB = 1024 * 1024
DOCUMENT_LIMIT = 4 * MiB
PARAMETERS_LIMIT = 64 * MiB
ALIASED_VALUES_LIMIT = 1_000_000

# The size limit of each kind of file, by the name callers give it; any other is a document.
_SIZE_LIMITS = {"parameters file": PARAMETERS_LIMIT}

_YAML = "tag:yaml.org,2002:"


def load_yaml(path: str, what: str, error: Callable[[str], Exception]) -> Any:
    """The document in ``path``, checked as the module says; every problem raises ``error`` naming the file.

    ``what`` says which file it is (``pipeline file``, ``parameters file``, ...) and picks its size
    limit.
    """
    file = Path(path)
    if not file.is_file():
        raise error(f"{path}: {what} not found")
    limit = _SIZE_LIMITS.get(what, DOCUMENT_LIMIT)
    size = file.stat().st_size
    if size > limit:
        raise error(f"{path}: {what} of {size:,} bytes is larger than the limit of {limit // MiB} MiB")
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise error(f"{path}: {what} cannot be read: {exc.strerror or exc}") from exc
    return parse_yaml(decode_text(raw, path, error), path, error)


def load_yaml_mapping(
    path: str, what: str, error: Callable[[str], Exception], expected: Optional[str] = None
) -> Dict[str, Any]:
    """Like :func:`load_yaml`, for files that must hold a mapping (an empty file is ``{}``)."""
    content = load_yaml(path, what, error)
    if content is None:
        return {}
    if not isinstance(content, dict):
        shape = expected or "a mapping"
        raise error(f"{path}: a {what} must be {shape}, got {type(content).__name__}")
    return content


def decode_text(raw: bytes, source: str, error: Callable[[str], Exception]) -> str:
    """``raw`` as UTF-8 text (without a byte-order mark); otherwise ``error`` naming the first bad byte."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise error(f"{source}: not UTF-8 text at byte {exc.start} (line {line})") from exc
    return text[1:] if text.startswith("\ufeff") else text


def parse_yaml(text: str, source: str, error: Callable[[str], Exception]) -> Any:
    """The one document in ``text``, checked for aliases, nesting and JSON types while it is built."""
    import yaml

    loader = _loader_class()(text)
    collecting = gc.isenabled()
    # Nothing built here is garbage, but the collector would walk the growing document again and
    # again: without it a large file loads twice as fast. (A recursive alias is refused below,
    # before any cycle of objects exists.)
    gc.disable()
    node = None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        problem = check_aliases(node) if "&" in text else check_depth(node)
        if problem:
            raise error(f"{source}: {problem}")
        return loader.construct_document(node)
    except _NotJSON as exc:
        where = _top_key(node, exc.node)
        line = exc.node.start_mark.line + 1
        raise error(f"{source}: line {line}: {where}{exc.problem}") from exc
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: python refuses an integer of 5,000 digits
        raise error(f"{source}: not valid YAML: {_described(exc)}") from exc
    finally:
        loader.dispose()
        if collecting:
            gc.enable()


class _NotJSON(Exception):
    def __init__(self, node: "Node", problem: str) -> None:
        super().__init__(problem)
        self.node, self.problem = node, problem


@functools.lru_cache(maxsize=1)
def _loader_class() -> Any:
    """libyaml's safe loader (the pure python one without libyaml), building JSON data only."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    def refuse(what: str) -> Callable[[Any, "Node"], Any]:
        def construct(loader: Any, node: "Node") -> Any:
            raise _NotJSON(node, f"{what} is not JSON data: write it as a string or a list")

        return construct

    def finite_float(loader: Any, node: "ScalarNode") -> float:
        value: float = yaml.SafeLoader.construct_yaml_float(loader, node)
        if not math.isfinite(value):
            raise _NotJSON(node, f"{node.value} is not JSON data (JSON has no NaN or infinity): use null or a string")
        return value

    class JSONDataLoader(base):  # type: ignore[misc, valid-type]
        def construct_mapping(self, node: "Node", deep: bool = False) -> Dict[str, Any]:
            """A mapping with text keys, as JSON has: ``1:`` is ``"1"``, ``true:`` is ``"true"``."""
            mapping: Dict[Any, Any] = super().construct_mapping(node, deep=deep)
            if all(type(key) is str for key in mapping):
                return mapping
            texts: Dict[str, Any] = {}
            for key, value in mapping.items():
                text = key if isinstance(key, str) else json.dumps(key)
                if text in texts:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key '{text}' is written twice", node.start_mark
                    )
                texts[text] = value
            return texts

    # JSON has no dates: a timestamp is the text written.
    JSONDataLoader.add_constructor(_YAML + "timestamp", yaml.SafeLoader.construct_yaml_str)
    JSONDataLoader.add_constructor(_YAML + "binary", refuse("a !!binary value"))
    JSONDataLoader.add_constructor(_YAML + "set", refuse("a !!set"))
    JSONDataLoader.add_constructor(_YAML + "float", finite_float)
    return JSONDataLoader


def _described(exc: Exception) -> str:
    """A YAML error in one line: where, then what (libyaml's marks name no file)."""
    import yaml

    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        what = f"{exc.problem} ({exc.context})" if exc.context else str(exc.problem)
        return f"line {mark.line + 1}, column {mark.column + 1}: {' '.join(what.split())}"
    return " ".join(str(exc).split())


def check_depth(root: "Node") -> str:
    """``''`` when the document ``root`` (without aliases) nests at most :data:`DEPTH_LIMIT` levels."""
    level, depth = [root], 1
    while level:
        if depth > DEPTH_LIMIT:
            return f"line {level[0].start_mark.line + 1}: {too_deep()}"
        below: List["Node"] = []
        for node in level:
            value = node.value
            if type(value) is list:  # a collection: a sequence's nodes, or a mapping's (key, value) pairs
                if value and type(value[0]) is tuple:
                    for pair in value:
                        below.extend(pair)
                else:
                    below.extend(value)
        level, depth = below, depth + 1
    return ""


def check_aliases(root: "Node") -> str:
    """What is wrong with the document ``root`` once its aliases are expanded (see the module), or ``''``.

    An alias is the node of its anchor, met again: each distinct node is visited once, and the
    size and depth of the expanded document are computed without expanding it.
    """
    done: Dict[int, Tuple[int, int]] = {}  # id(node) -> (values under it expanded, levels under it)
    on_path: set[int] = set()
    # Iterative depth-first walk: (node, its depth, children left to visit, reversed).
    stack: List[Tuple["Node", int, List["Node"]]] = [(root, 1, _children(root))]
    on_path.add(id(root))
    while stack:
        node, depth, children = stack[-1]
        if not children:
            stack.pop()
            on_path.discard(id(node))
            measures = [done[id(child)] for child in _children(node)]
            done[id(node)] = (1 + sum(count for count, _ in measures), 1 + max((lv for _, lv in measures), default=0))
            continue
        child = children.pop()
        line = child.start_mark.line + 1
        if id(child) in on_path:
            return f"line {line}: an alias refers to the value it is in (a recursive alias)"
        if id(child) in done:  # an alias: the same node again, maybe deeper than where it was written
            if depth + done[id(child)][1] > DEPTH_LIMIT:
                return f"line {line}: {too_deep()} (through an alias)"
            continue
        if depth + 1 > DEPTH_LIMIT:
            return f"line {line}: {too_deep()}"
        on_path.add(id(child))
        stack.append((child, depth + 1, _children(child)))
    total = done[id(root)][0]
    if total - len(done) > ALIASED_VALUES_LIMIT:
        return (
            f"aliases repeat more than {ALIASED_VALUES_LIMIT:,} values in all "
            f"({total:,} once expanded, from {len(done):,} written): refused"
        )
    return ""


def _children(node: "Node") -> List["Node"]:
    """The nodes directly under ``node``, last first (the walk pops them from the end)."""
    value = node.value
    if type(value) is not list:
        return []
    if value and type(value[0]) is tuple:
        return [part for pair in reversed(value) for part in reversed(pair)]
    return list(reversed(value))


def _top_key(root: Any, node: "Node") -> str:
    """``'<key>: '`` of the top-level entry of ``root`` that ``node`` is in (by its position), or ``''``."""
    if root is None or type(root.value) is not list or not root.value or type(root.value[0]) is not tuple:
        return ""
    for key, value in root.value:
        if key.start_mark.index <= node.start_mark.index <= value.end_mark.index:
            return f"{key.value}: " if isinstance(key.value, str) else ""
    return ""
