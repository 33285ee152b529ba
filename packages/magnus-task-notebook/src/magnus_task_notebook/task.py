"""``command_type: notebook``: execute a Jupyter notebook in this process with ploomber-engine.

The run's parameters (and a map's value) are injected after the cell tagged ``parameters`` (or at
the top when there is none), as papermill does. The executed notebook is written to
``notebook_output_path`` (``<name>_out.ipynb``, with the map items' names appended inside a map) and put
in the catalog, also when a cell fails. Variables the notebook defines whose names are listed in
``returns`` become parameters of the run, like the fields a python function returns.

As for every task type, the step runner puts the run's parameters in the environment as
``MAGNUS_PRM_<name>`` (JSON) while the notebook runs, and what the notebook sets there becomes a
parameter of the run (magnus 0.5.1's way); the engine runs the notebook in this process, so the
notebook's ``os.environ`` is the step's.

What a cell prints goes to the step's output as it is written, unchanged, so the step masks a
secret in it even when printed in pieces (ploomber-engine's own display writes each piece on a
line of its own, which cut a secret apart past masking). The executed notebook is written with
the run's secrets masked, in its outputs and its cells.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Optional, TextIO

from pydantic import Field, field_validator

from magnus import defaults
from magnus.errors import NoRunContextError, TaskFailedError
from magnus.map_position import position_names
from magnus.parameters import returned_parameters
from magnus.runtime.current import current_step
from magnus.tasks.base import BaseTaskType

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"


class NotebookTaskType(BaseTaskType):
    """Executes ``command`` (an ``.ipynb`` path) with the run's parameters."""

    task_type: ClassVar[str] = "notebook"

    notebook_output_path: str = Field(default="", description="Where the executed notebook is written.")
    optional_ploomber_args: Dict[str, Any] = Field(
        default_factory=dict, description="More arguments for ploomber-engine's client (cwd, ...)."
    )
    returns: List[str] = Field(
        default_factory=list, description="Variables of the notebook that become parameters of the run."
    )
    output_cell_tag: str = Field(
        default="magnus_output",
        description="magnus 0.5.1's way out: the printed dict literal of cells with this tag become parameters.",
    )

    @field_validator("command")
    @classmethod
    def _is_a_notebook(cls, command: str) -> str:
        if not command.endswith(".ipynb"):
            raise ValueError(f"a notebook task runs an .ipynb file, got '{command}'")
        return command

    def output_path(self, map_variable: defaults.TypeMapVariable = None) -> str:
        path = self.notebook_output_path or self.command[: -len(".ipynb")] + "_out.ipynb"
        if map_variable:
            stem = path[: -len(".ipynb")] if path.endswith(".ipynb") else path
            path = stem + "".join(f"_{item}" for item in position_names(map_variable)) + ".ipynb"
        return path

    def code_versions(self) -> Dict[str, str]:
        """The notebook's cells (their type and source, in order; outputs and metadata left out), hashed
        under the notebook's path: running it again changes no key, editing a cell does.

        Raises:
            TaskFailedError: the notebook is not there or is not JSON.
        """
        from magnus.source_hash import text_hash

        try:
            cells = json.loads(Path(self.command).read_text(encoding="utf-8")).get("cells", [])
        except (OSError, ValueError, AttributeError) as exc:
            raise TaskFailedError(f"notebook '{self.command}' cannot be read: {exc}") from None
        code = [
            [cell.get("cell_type", ""), _source(cell.get("source", ""))] for cell in cells if isinstance(cell, dict)
        ]
        return {self.command: text_hash(json.dumps(code))}

    def execute_command(
        self, parameters: Dict[str, Any], map_variable: defaults.TypeMapVariable = None
    ) -> Dict[str, Any]:
        import nbformat

        source = Path(self.command)
        if not source.is_file():
            raise TaskFailedError(f"notebook '{self.command}' not found")
        notebook = nbformat.read(source, as_version=4)
        inject_parameters(notebook, {**parameters, **(map_variable or {})})
        options = {"display_stdout": True, "progress_bar": False, **self.optional_ploomber_args}
        shown = sys.stdout if options.pop("display_stdout") else None
        client = _client(notebook, shown, options)
        output = self.output_path(map_variable)
        try:
            namespace = client.get_namespace()
        except Exception as exc:  # noqa: BLE001 - said as the failing cell and its error
            raise TaskFailedError(_failure(notebook, exc)) from None
        finally:
            Path(output).parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(_masked(notebook), output)
            _put_in_catalog(output)
        missing = [name for name in self.returns if name not in namespace]
        if missing:
            raise TaskFailedError(f"notebook '{self.command}' did not define {', '.join(missing)} (listed in returns)")
        returned = tagged_outputs(notebook, self.output_cell_tag)
        returned.update({name: namespace[name] for name in self.returns})
        return returned_parameters(returned, self.command)


def _source(source: Any) -> str:
    """A cell's source as one text (nbformat keeps it as a string or a list of lines)."""
    return "".join(source) if isinstance(source, list) else str(source)


class _Both(io.TextIOBase):
    """Writes to ploomber's capture of a cell's output (kept in the notebook) and to the step's stdout."""

    def __init__(self, captured: TextIO, shown: TextIO) -> None:
        self._captured, self._shown = captured, shown

    def write(self, text: str) -> int:
        self._captured.write(text)
        self._shown.write(text)
        return len(text)

    def flush(self) -> None:
        self._shown.flush()


def _client(notebook: Any, shown: Optional[TextIO], options: Dict[str, Any]) -> Any:
    """ploomber-engine's client; with ``shown``, what each cell prints is also written there as it comes."""
    from ploomber_engine.ipython import PloomberClient

    class StreamingClient(PloomberClient):  # type: ignore[misc]
        def hook_cell_pre(self, cell: Any) -> None:
            # Called once ploomber captures the cell's stdout (sys.stdout is its capture now).
            super().hook_cell_pre(cell)
            if shown is not None:
                sys.stdout = _Both(sys.stdout, shown)

    return StreamingClient(notebook, display_stdout=False, **options)


def _masked(notebook: Any) -> Any:
    """The executed notebook with the run's secrets masked (outputs and cells); as it is outside a run."""
    import nbformat

    step = current_step()
    if step is None or not step.services.redactor:
        return notebook
    return nbformat.from_dict(step.services.redactor.redact_data(dict(notebook)))


def inject_parameters(notebook: Any, parameters: Dict[str, Any]) -> None:
    """Add a cell assigning the parameters after the ``parameters`` cell (or first)."""
    import nbformat

    lines = [f"{name} = {_literal(value)}" for name, value in parameters.items() if name.isidentifier()]
    cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": [INJECTED_TAG]})
    position = 0
    for index, existing in enumerate(notebook.cells):
        if PARAMETERS_TAG in existing.get("metadata", {}).get("tags", []):
            position = index + 1
            break
    notebook.cells.insert(position, cell)


def tagged_outputs(notebook: Any, tag: str) -> Dict[str, Any]:
    """The dict literals printed by cells tagged ``tag`` (magnus 0.5.1's ``output_cell_tag``)."""
    import ast

    found: Dict[str, Any] = {}
    for cell in notebook.cells:
        if tag not in cell.get("metadata", {}).get("tags", []):
            continue
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            try:
                value = ast.literal_eval(text.strip()) if text.strip() else None
            except (ValueError, SyntaxError):
                raise TaskFailedError(f"a cell tagged {tag} must print a dict literal, printed: {text.strip()[:80]}")
            if isinstance(value, dict):
                found.update(value)
    return found


def _literal(value: Any) -> str:
    """Python source for a JSON value (``true`` becomes ``True`` and so on)."""
    return repr(json.loads(json.dumps(value)))


def _failure(notebook: Any, exc: Exception) -> str:
    """Which code cell failed (counting code cells from 1, the injected one excluded), at which line of
    it, and the user's exception: ``cell 2 failed at line 2 (f()): ZeroDivisionError: division by zero``."""
    cells = [
        cell
        for cell in notebook.cells
        if cell.get("cell_type") == "code" and INJECTED_TAG not in cell.get("metadata", {}).get("tags", [])
    ]
    if isinstance(exc, SyntaxError):  # raised before the cell ran: it has no error output
        number = next((index for index, cell in enumerate(cells, 1) if not _parses(cell.source)), 0)
        line, text, error = exc.lineno, exc.text or "", f"SyntaxError: {exc.msg}"
    else:
        number = next((index for index, cell in enumerate(cells, 1) if _has_error_output(cell)), 0)
        line, text = _cell_line(exc)
        error = f"{type(exc).__name__}: {exc}"
    where = f"cell {number} failed" if number else "the notebook failed"
    if line:
        where += f" at line {line}" + (f" ({text.strip()})" if text.strip() else "")
    return f"{where}: {error}"


def _has_error_output(cell: Any) -> bool:
    return any(output.get("output_type") == "error" for output in cell.get("outputs", []))


def _parses(source: str) -> bool:
    """Whether a cell's source is Python once IPython's own syntax (``%magic``, ``!shell``) is turned into it."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        compile(TransformerManager().transform_cell(source), "<cell>", "exec")
    except SyntaxError:
        return False
    return True


def _cell_line(exc: BaseException) -> "tuple[int, str]":
    """The line of the cell's own code where ``exc`` was raised (its first frame in a cell), and its text."""
    import traceback

    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith("<ipython-input-"):
            return frame.lineno or 0, frame.line or ""
    return 0, ""


def _put_in_catalog(path: str) -> None:
    """Keep the executed notebook in the run's catalog, recorded on the step.

    Outside a step (the task called directly) there is no run and no catalog: nothing to do.
    """
    from magnus.interaction import put_in_catalog

    try:
        put_in_catalog(path)
    except NoRunContextError:
        pass
