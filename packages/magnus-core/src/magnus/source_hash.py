"""The version of a python function's code: the source of its module and of the project modules it imports.

A step's cache key must change when the code it runs changes, including a helper module of the
project it imports (``from mypackage.cleaning import drop_nulls``). A commit id is not enough
(uncommitted changes, a commit touching nothing the step runs would miss every cache), so the
files themselves are hashed: the function's module, then every module it imports that lives in
the project (under the working folder, outside any installed packages' folders), followed
transitively. Installed libraries are not followed: their version is the environment's.

Each file is read and parsed once per process while it is unchanged (its size and modification
time), so a pipeline of many steps over the same modules pays for each module once.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import os
import sys
import sysconfig
from pathlib import Path
from typing import Dict, FrozenSet, List, Optional, Tuple

# path -> (size, mtime_ns, sha256, imported module names as written)
_PARSED: Dict[str, Tuple[int, int, str, Tuple[str, ...]]] = {}
# (module, root) -> (the files found with their size and mtime, the result): every step of a run asks again
_FOUND: Dict[Tuple[str, str], Tuple[Tuple[Tuple[str, int, int], ...], Dict[str, str]]] = {}


def text_hash(text: str) -> str:
    """The hex sha256 of ``text`` (UTF-8)."""
    return hashlib.sha256(text.encode("utf-8", errors="surrogateescape")).hexdigest()


def module_sources(module_name: str, root: Optional[Path] = None) -> Dict[str, str]:
    """The project files ``module_name`` runs, by path relative to ``root`` (the working folder), each
    with the sha256 of its content: the module's own file first, then the project modules it imports,
    transitively. Empty when the module has no file under ``root`` (an installed library's function).
    """
    base = (root or Path.cwd()).resolve()
    known = _FOUND.get((module_name, str(base)))
    if known is not None and all(_stamp(path) == (size, mtime) for path, size, mtime in known[0]):
        return dict(known[1])  # the same files, unchanged: one stat each
    found, stamps = _walk(module_name, base)
    _FOUND[(module_name, str(base))] = (stamps, found)
    return dict(found)


def _stamp(path: str) -> Tuple[int, int]:
    try:
        stat = os.stat(path)
    except OSError:
        return (-1, -1)
    return (stat.st_size, stat.st_mtime_ns)


def _walk(module_name: str, base: Path) -> Tuple[Dict[str, str], Tuple[Tuple[str, int, int], ...]]:
    """The project files of ``module_name`` and its imports, and the size and mtime of each as read."""
    excluded = _installed_folders()
    found: Dict[str, str] = {}
    stamps: List[Tuple[str, int, int]] = []
    pending: List[Tuple[str, Optional[Path]]] = [(module_name, None)]
    seen: set[str] = set()
    while pending:
        name, known = pending.pop(0)
        if name in seen:
            continue
        seen.add(name)
        path = known or _module_file(name)
        if path is None or not _in_project(path, base, excluded):
            continue
        parsed = _parsed(path)
        if parsed is None:
            continue
        digest, imports = parsed
        found[path.relative_to(base).as_posix()] = digest
        size, mtime = _PARSED[str(path)][:2]  # as it was when read
        stamps.append((str(path), size, mtime))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for written in imports:
            resolved = _absolute(written, package)
            if resolved:
                pending.extend((candidate, None) for candidate in _candidates(resolved))
    return found, tuple(stamps)


def _parsed(path: Path) -> Optional[Tuple[str, Tuple[str, ...]]]:
    """The sha256 of ``path`` and the modules it imports (as written, ``.x`` for relative ones)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    key = str(path)
    cached = _PARSED.get(key)
    if cached is not None and cached[0] == stat.st_size and cached[1] == stat.st_mtime_ns:
        return cached[2], cached[3]
    try:
        content = path.read_bytes()
    except OSError:
        return None
    digest = hashlib.sha256(content).hexdigest()
    imports = _imports(content)
    _PARSED[key] = (stat.st_size, stat.st_mtime_ns, digest, imports)
    return digest, imports


def _imports(content: bytes) -> Tuple[str, ...]:
    """The modules a source imports, anywhere in it (a function's body included); ``from x import y``
    gives ``x`` and ``x.y`` (``y`` may be a submodule). A file that does not parse imports nothing known."""
    try:
        tree = ast.parse(content)
    except (SyntaxError, ValueError):
        return ()
    names: List[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            stem = "." * node.level + (node.module or "")
            names.append(stem)
            joiner = "" if stem.endswith(".") or not stem else "."
            names.extend(stem + joiner + alias.name for alias in node.names if alias.name != "*")
    return tuple(names)


def _absolute(written: str, package: str) -> str:
    """An import as written (``.helpers``, ``..x``, ``pkg.mod``) as an absolute module name ('' when it
    climbs above the top package)."""
    if not written.startswith("."):
        return written
    level = len(written) - len(written.lstrip("."))
    parts = package.split(".") if package else []
    if level - 1 > len(parts):
        return ""
    base = parts[: len(parts) - (level - 1)]
    rest = written[level:]
    return ".".join([*base, rest] if rest else base)


def _candidates(name: str) -> List[str]:
    """``a.b.c`` and the packages holding it (``a.b``, ``a``): their ``__init__`` runs too."""
    parts = name.split(".")
    return [".".join(parts[:end]) for end in range(len(parts), 0, -1)]


def _module_file(name: str) -> Optional[Path]:
    """The source file of module ``name``, from the modules imported already, else by finding it
    (never importing it)."""
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None) if module is not None else None
    if file is None:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError, AttributeError):
            return None
        file = spec.origin if spec is not None and spec.has_location else None
    if not file or not str(file).endswith(".py"):
        return None
    return Path(file).resolve()


@functools.cache
def _installed_folders() -> FrozenSet[str]:
    """Folders of installed packages and of the interpreter: never the project's, even under it (a venv)."""
    folders = {sysconfig.get_paths().get(kind, "") for kind in ("purelib", "platlib", "stdlib", "platstdlib")}
    folders.update((sys.prefix, sys.base_prefix, sys.exec_prefix))
    return frozenset(os.path.realpath(folder) for folder in folders if folder)


def _in_project(path: Path, root: Path, excluded: FrozenSet[str]) -> bool:
    text = str(path)
    if not text.startswith(str(root) + os.sep):
        return False
    return not any(text.startswith(folder + os.sep) for folder in excluded if folder != str(root))
