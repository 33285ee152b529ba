"""``run_log_store: {type: chunked-fs, config: {log_folder: .run_log_store}}``.

One folder per run and one small file per run-log part (see :mod:`magnus_runlog_chunked.layout`).
Every file is written atomically (temp file, fsync, rename), and no two writers of one run write
the same file unless they update the same part, so processes running map iterations or parallel
branches on different machines can write at once, without locks, and lose nothing. Recording a
step writes that step's file only: its cost does not grow with the size of the run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Union
from urllib.parse import unquote

from magnus import defaults
from magnus.atomic import write_atomically
from magnus.datastore.base import BaseRunLogStore
from magnus.datastore.models import BranchLog, RunLog, StepLog
from magnus.errors import BranchLogNotFoundError, RunLogNotFoundError, StepLogNotFoundError
from magnus_runlog_chunked import layout

_HEADER_EXCLUDES = {"steps", "parameters", "run_config"}


class ChunkedFileSystemRunLogStore(BaseRunLogStore):
    """Run logs as folders of small files; reading a run reassembles magnus 0.5.1's JSON."""

    service_name: ClassVar[str] = "chunked-fs"
    shared_between_processes: ClassVar[bool] = True

    log_folder: str = defaults.LOG_FOLDER

    def run_folder(self, run_id: str) -> Path:
        return Path(self.log_folder) / run_id

    # ---- whole logs ----------------------------------------------------------------------------
    def run_log_exists(self, run_id: str) -> bool:
        return (self.run_folder(run_id) / layout.RUN_FILE).is_file()

    def get_run_log_by_id(self, run_id: str, full: bool = True) -> RunLog:
        """The run log; with ``full=False`` only its own fields and parameters, not its steps."""
        folder = self.run_folder(run_id)
        header = _read_json(folder / layout.RUN_FILE)
        if header is None:
            raise RunLogNotFoundError(run_id)
        run_log = RunLog.model_validate(header)
        run_log.parameters = self.get_parameters(run_id)
        run_log.run_config = _read_json(folder / layout.CONFIG_FILE) or {}
        if full:
            run_log.steps = _read_steps(folder / layout.STEPS)
        return run_log

    def put_run_log(self, run_log: RunLog) -> None:
        folder = self.run_folder(run_log.run_id)
        _write_json(folder / layout.RUN_FILE, run_log.model_dump(mode="json", exclude=_HEADER_EXCLUDES))
        _write_json(folder / layout.CONFIG_FILE, run_log.run_config)
        self.set_parameters(run_log.run_id, run_log.parameters)
        for step in run_log.steps.values():
            self.add_step_log(step, run_log.run_id)

    # ---- run-level fields ----------------------------------------------------------------------
    def update_run_log_status(self, run_id: str, status: str) -> None:
        path = self.run_folder(run_id) / layout.RUN_FILE
        header = _read_json(path)
        if header is None:
            raise RunLogNotFoundError(run_id)
        header["status"] = status
        _write_json(path, header)

    def get_parameters(self, run_id: str) -> Dict[str, Any]:
        folder = self.run_folder(run_id) / layout.PARAMETERS
        if not folder.is_dir():
            if not self.run_log_exists(run_id):
                raise RunLogNotFoundError(run_id)
            return {}
        parameters = {}
        for entry in sorted(os.scandir(folder), key=lambda item: item.name):
            if entry.name.endswith(".json"):
                record = _read_json(Path(entry.path))
                if record is not None:
                    parameters[record["name"]] = record["value"]
        return parameters

    def set_parameters(self, run_id: str, parameters: Dict[str, Any]) -> None:
        """One file per parameter: writers setting different parameters never collide."""
        folder = self.run_folder(run_id) / layout.PARAMETERS
        for name, value in parameters.items():
            _write_json(folder / f"{layout.folder_name(name)}.json", {"name": name, "value": value})

    def get_run_config(self, run_id: str) -> Dict[str, Any]:
        return _read_json(self.run_folder(run_id) / layout.CONFIG_FILE) or {}

    def set_run_config(self, run_id: str, run_config: Dict[str, Any]) -> None:
        path = self.run_folder(run_id) / layout.CONFIG_FILE
        _write_json(path, {**(_read_json(path) or {}), **run_config})

    # ---- steps and branches --------------------------------------------------------------------
    def get_step_log(self, internal_name: str, run_id: str) -> StepLog:
        folder, exists = self._locate(run_id, internal_name, "step")
        if not exists:
            raise StepLogNotFoundError(run_id, internal_name)
        return _read_step(folder)

    def add_step_log(self, step_log: StepLog, run_id: str) -> None:
        """Write the step's file; branches it carries are written when not recorded yet."""
        folder, exists = self._locate(run_id, step_log.internal_name, "step", writing=True)
        _mark_created(folder, exists)
        _write_json(folder / layout.STEP_FILE, step_log.model_dump(mode="json", exclude={"branches"}))
        for branch in step_log.branches.values():
            if not (folder / layout.BRANCHES / _relative(branch.internal_name, step_log.internal_name)).is_dir():
                self.add_branch_log(branch, run_id)

    def get_branch_log(self, internal_branch_name: str, run_id: str) -> Union[BranchLog, RunLog]:
        """A branch with its steps; the empty name gives the run's own fields (not its steps)."""
        if not internal_branch_name:
            return self.get_run_log_by_id(run_id, full=False)
        folder, exists = self._locate(run_id, internal_branch_name, "branch")
        if not exists:
            raise BranchLogNotFoundError(run_id, internal_branch_name)
        return _read_branch(folder)

    def add_branch_log(self, branch_log: Union[BranchLog, RunLog], run_id: str) -> None:
        """Write the branch's file, keeping its recorded steps; steps it carries are written when new."""
        if isinstance(branch_log, RunLog):
            self.update_run_log_status(run_id, branch_log.status)
            return
        folder, exists = self._locate(run_id, branch_log.internal_name, "branch", writing=True)
        _mark_created(folder, exists)
        _write_json(folder / layout.BRANCH_FILE, branch_log.model_dump(mode="json", exclude={"steps"}))
        for step in branch_log.steps.values():
            if not (folder / layout.STEPS / _relative(step.internal_name, branch_log.internal_name)).is_dir():
                self.add_step_log(step, run_id)

    def _locate(self, run_id: str, internal_name: str, kind: str, writing: bool = False) -> tuple[Path, bool]:
        """The part's folder; a missing parent is "not found" of the part (reading) or its parent (writing)."""
        folder = self.run_folder(run_id)
        if not (folder / layout.RUN_FILE).is_file():
            raise RunLogNotFoundError(run_id)
        try:
            return layout.locate(folder, internal_name, kind)
        except LookupError as missing:
            missing_kind = ("branch" if kind == "step" else "step") if writing else kind
            name = str(missing) if writing else internal_name
            if missing_kind == "step":
                raise StepLogNotFoundError(run_id, name) from None
            raise BranchLogNotFoundError(run_id, name) from None


def _relative(child: str, parent: str) -> str:
    return layout.folder_name(child[len(parent) + 1 :])


def _mark_created(folder: Path, exists: bool) -> None:
    """Create the part's folder and its creation marker once; the marker orders siblings."""
    if exists:
        return
    folder.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(folder / layout.CREATED_MARKER, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        pass


def _children(container: Path) -> List[Path]:
    """Sub-folders in the order they were created."""
    if not container.is_dir():
        return []
    found = []
    for entry in os.scandir(container):
        if entry.is_dir():
            marker = Path(entry.path) / layout.CREATED_MARKER
            stamp = marker.stat().st_mtime_ns if marker.exists() else 0
            found.append((stamp, unquote(entry.name), Path(entry.path)))
    return [path for _, _, path in sorted(found)]


def _read_steps(container: Path) -> Dict[str, StepLog]:
    steps = {}
    for folder in _children(container):
        if (folder / layout.STEP_FILE).is_file():
            step = _read_step(folder)
            steps[step.internal_name] = step
    return steps


def _read_step(folder: Path) -> StepLog:
    step = StepLog.model_validate(_read_json(folder / layout.STEP_FILE))
    for branch_folder in _children(folder / layout.BRANCHES):
        if (branch_folder / layout.BRANCH_FILE).is_file():
            branch = _read_branch(branch_folder)
            step.branches[branch.internal_name] = branch
    return step


def _read_branch(folder: Path) -> BranchLog:
    branch = BranchLog.model_validate(_read_json(folder / layout.BRANCH_FILE))
    branch.steps = _read_steps(folder / layout.STEPS)
    return branch


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return None


def _write_json(path: Path, data: Any) -> None:
    write_atomically(path, json.dumps(data).encode())
