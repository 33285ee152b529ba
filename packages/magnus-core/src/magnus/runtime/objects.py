"""Python objects of a run: pickled into its catalog, read back by any later step, in any process.

``magnus.put_object``/``get_object``, a python task's ``returns`` of kind ``object`` and the
arguments of a function that takes an object all come here. An object goes through the run's
pickler into the catalog (``<name>.pickle``, recorded on the step), so it crosses processes,
containers, jobs and pods as the catalog's files do; with a catalog that keeps no data it is kept
in ``.magnus/objects/<run_id>/`` under the working folder. Objects belong to their run: two runs
at once never see each other's.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Dict, Iterable, List, Tuple

from magnus import defaults
from magnus.atomic import write_atomically
from magnus.catalog import sha256_of
from magnus.errors import CatalogError, UserInputError
from magnus.map_position import position_names
from magnus.names import check_path_name, encode_file_name
from magnus.runtime.current import CurrentStep

# Where objects are kept when no catalog keeps data: a folder of each run under the working
# folder (which containers of the run mount too), never the working folder itself.
OBJECTS_FOLDER = Path(".magnus") / "objects"
# Objects put at a map position live under this folder of the run's objects (names never start with it).
_AT_POSITION = ".map"
_GLOB_CHARACTERS = frozenset("*?[]")


def put(step: CurrentStep, data: Any, name: str) -> None:
    """Keep ``data`` as the object ``name`` of the step's run; its size is recorded on the step.

    Inside a map iteration the object is also kept for that iteration alone, so iterations
    putting the same name do not overwrite what each reads back; the run-wide copy is the last
    one put, as in magnus 0.5.1.

    Raises:
        UserInputError: ``name`` cannot be a file name (empty, ``/``, ``..``, a glob character).
    """
    services = step.services
    extension = services.pickler.extension
    keys = _object_keys(name, step.map_variable)
    with tempfile.TemporaryDirectory(prefix="magnus-object-") as scratch:
        made = Path(scratch) / "object"
        services.pickler.dump(data, str(made))
        pickled = Path(str(made) + extension).read_bytes()
        step.objects[name] = len(pickled)
        if not services.catalog.keeps_data:
            for key in keys:
                file = _objects_folder(services.run_id) / (key + extension)
                file.parent.mkdir(parents=True, exist_ok=True)
                write_atomically(file, pickled, durable=False)
            return
        for key in keys:
            file = Path(scratch, key + extension)
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(pickled)
            step.step_log.add_data_catalogs(services.catalog.put(key + extension, services.run_id, scratch))


def get(step: CurrentStep, name: str) -> Any:
    """The object ``name`` of the step's run (or of the run it resumes).

    Inside a map iteration, what this iteration put comes first, then what was put for the
    enclosing iterations, then for the whole run.

    Raises:
        CatalogError: no object of that name was put.
        UserInputError: ``name`` cannot be a file name.
    """
    return _get(step, name)[0]


def _get(step: CurrentStep, name: str) -> Tuple[Any, str]:
    """The object ``name`` and the sha256 of its pickled bytes (see [`get`][])."""
    services = step.services
    extension = services.pickler.extension
    keys = _object_keys(name, step.map_variable)
    if not services.catalog.keeps_data:
        runs = [services.run_id] + ([services.original_run_id] if services.original_run_id else [])
        for run_id in runs:
            for key in keys:
                stem = _objects_folder(run_id) / key
                if Path(str(stem) + extension).is_file():
                    return services.pickler.load(str(stem)), sha256_of(Path(str(stem) + extension))
    else:
        with tempfile.TemporaryDirectory(prefix="magnus-object-") as scratch:
            for key in keys:
                try:
                    entries = services.catalog.get(key + extension, services.run_id, scratch)
                except CatalogError:
                    continue
                step.step_log.add_data_catalogs(entries)
                digest = entries[0].data_hash if entries else sha256_of(Path(scratch, key + extension))
                return services.pickler.load(str(Path(scratch, key))), digest
    raise CatalogError(f"get_object: no object '{name}' was put in run '{services.run_id}'")


def held(step: CurrentStep, names: Iterable[str]) -> Dict[str, Any]:
    """The objects of ``names`` the run holds, by name (those it does not hold are left out).

    What a function's arguments that no parameter names receive: an argument without one is
    reported missing as before, by the function's call.
    """
    return held_with_hashes(step, names)[0]


def held_with_hashes(step: CurrentStep, names: Iterable[str]) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """[`held`][], with the sha256 of each object's pickled bytes, by name (what a cache key takes)."""
    found: Dict[str, Any] = {}
    hashes: Dict[str, str] = {}
    for name in names:
        try:
            found[name], hashes[name] = _get(step, name)
        except CatalogError:
            continue
    return found, hashes


def copy_between_runs(step: CurrentStep, names: Iterable[str], previous_run_id: str) -> None:
    """Copy the objects ``names`` a step of ``previous_run_id`` put, kept outside any catalog, into the
    step's run (a reused step's objects, with a catalog keeping no data; a catalog's are its files)."""
    extension = step.services.pickler.extension
    for name in names:
        for key in _object_keys(name, step.map_variable):
            source = _objects_folder(previous_run_id) / (key + extension)
            if source.is_file():
                target = _objects_folder(step.services.run_id) / (key + extension)
                target.parent.mkdir(parents=True, exist_ok=True)
                write_atomically(target, source.read_bytes(), durable=False)


def _object_keys(name: str, map_variable: defaults.TypeMapVariable) -> List[str]:
    """Where an object named ``name`` is kept (without the pickler's extension), most specific first.

    One key per enclosing map position (``.map/<item>/.../<name>``, the items' names encoded as
    file names: items sharing ``str(value)`` get their own, see :mod:`magnus.map_position`), then
    the run's (``<name>``).
    """
    check_path_name(name, "object name")
    if _GLOB_CHARACTERS.intersection(name):
        raise UserInputError(f"object name {name!r}: must not contain any of '*?[]' (it becomes a file name)")
    values = [encode_file_name(item) for item in position_names(map_variable)]
    keys = ["/".join([_AT_POSITION, *values[:depth], name]) for depth in range(len(values), 0, -1)]
    return [*keys, name]


def _objects_folder(run_id: str) -> Path:
    return OBJECTS_FOLDER / check_path_name(run_id, "run id")
