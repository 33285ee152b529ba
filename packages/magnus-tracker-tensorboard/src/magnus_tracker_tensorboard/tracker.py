"""``experiment_tracker: {type: tensorboard, config: {log_dir}}``: TensorBoard event files, no TensorFlow.

Written with tensorboardX (numpy and protobuf; neither TensorFlow nor torch), read by any
TensorBoard. One folder per magnus run, ``<log_dir>/<run id>``, and inside it one folder per step,
``<log_dir>/<run id>/<step>`` (a map item's step is its own, ``fan.2.work``,
so TensorBoard shows each item as a separate series):

- ``track_this`` numbers: scalars (double precision), tagged by name, at their ``step``; other values: text;
- the run's parameters, run id and tag: TensorBoard's hparams (session start) in the run's
  folder, with the run's status at its end (session end);
- each step's status (text ``magnus/status``) and duration (scalar ``magnus/duration_seconds``).

Step and run ids become folder names through core's ``encode_file_name``: a map value holding
``../`` or ``/`` stays one folder inside the run's. Every process of a run (a worker, a container
on a shared folder) writes its own event files beside the others', as TensorBoard expects; a
process forked with open writers opens its own. tensorboardX is imported on first use only.
"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any, ClassVar, Dict, List, Optional

from pydantic import Field, PrivateAttr, field_validator

from magnus import defaults
from magnus.names import encode_file_name
from magnus.tracker import BaseExperimentTracker

if TYPE_CHECKING:
    from tensorboardX import SummaryWriter

STATUS_TAG = "magnus/status"
DURATION_TAG = "magnus/duration_seconds"
RUN_ID_PARAMETER = "magnus.run_id"
TAG_PARAMETER = "magnus.tag"


def hparam_value(value: Any) -> Any:
    """A value TensorBoard's hparams keep: numbers, text and booleans as they are, anything else as JSON."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, sort_keys=True, default=str)


class TensorBoardExperimentTracker(BaseExperimentTracker):
    """Writes TensorBoard event files under ``log_dir`` (a folder of this machine, or one shared)."""

    service_name: ClassVar[str] = "tensorboard"

    log_dir: str = Field(default=".tensorboard", description="Folder of the event files: one folder per run.")

    _run_id: str = PrivateAttr(default="")
    _tag: str = PrivateAttr(default="")
    _step: str = PrivateAttr(default="")
    _step_started: float = PrivateAttr(default=0.0)
    _writers: Dict[str, "SummaryWriter"] = PrivateAttr(default_factory=dict)
    _pid: int = PrivateAttr(default=0)

    @field_validator("log_dir")
    @classmethod
    def _is_a_folder(cls, log_dir: str) -> str:
        if not log_dir.strip():
            raise ValueError("must name a folder")
        if "://" in log_dir:
            raise ValueError(f"{log_dir!r} is a URL: the tensorboard tracker writes to a folder of this machine")
        return log_dir

    def local_paths(self) -> List[str]:
        return [self.log_dir]

    # ---- hooks ------------------------------------------------------------------------------------
    def start_run(self, run_id: str, tag: str = "", parameters: Optional[Dict[str, Any]] = None) -> None:
        """Open the run's folder; its parameters, run id and tag become the hparams of the run."""
        self._attach(run_id, tag)
        from tensorboardX.summary import hparams

        values = {key: hparam_value(value) for key, value in (parameters or {}).items()}
        values.update({RUN_ID_PARAMETER: run_id, TAG_PARAMETER: tag})
        experiment, start, _ = hparams(values, {})
        writer = self._writer("")
        writer.file_writer.add_summary(experiment)
        writer.file_writer.add_summary(start)
        writer.flush()

    def end_run(self, status: str) -> None:
        """The hparams session ends with the run's status; every writer of this process is closed."""
        if self._run_id:
            from tensorboardX.proto.api_pb2 import Status
            from tensorboardX.summary import hparams

            _, _, end = hparams({}, {})
            end.value[0].metadata.plugin_data.content = _session_end(
                Status.STATUS_SUCCESS if status == defaults.SUCCESS else Status.STATUS_FAILURE
            )
            self._writer("").file_writer.add_summary(end)
        self._close()
        self._run_id = ""

    def start_step(self, run_id: str, tag: str, step: str) -> None:
        """What is tracked from now on belongs to ``step`` (its folder is made on first use)."""
        self._attach(run_id, tag)
        self._step, self._step_started = step, time.monotonic()

    def end_step(self, step: str, status: str) -> None:
        """The step's status and duration, in its folder; its writer closed (its events on disk)."""
        if self._step != step:
            return
        writer = self._writer(step)
        writer.add_text(STATUS_TAG, status, 0)
        _add_scalar(writer, DURATION_TAG, time.monotonic() - self._step_started, 0)
        writer.close()
        self._writers.pop(step, None)
        self._step = ""

    # ---- what tasks track -------------------------------------------------------------------------
    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        """A scalar of the step running now (of the run between steps)."""
        _add_scalar(self._writer(self._step), key, value, step)

    def log_parameter(self, key: str, value: Any) -> None:
        """A text of the step running now (of the run between steps)."""
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        self._writer(self._step).add_text(key, text, 0)

    # ---- writers ----------------------------------------------------------------------------------
    def _attach(self, run_id: str, tag: str) -> None:
        """Track for ``run_id`` from now on; writers of another run (or of the parent process) are dropped."""
        if self._pid != os.getpid():  # forked: the parent's writers' threads are not ours
            self._writers, self._pid = {}, os.getpid()
        if run_id != self._run_id:
            self._close()
            self._run_id, self._tag, self._step = run_id, tag, ""

    def _writer(self, step: str) -> "SummaryWriter":
        """The writer of ``step``'s folder ('' for the run's own), opened on first use."""
        self._attach(self._run_id, self._tag)
        if not self._run_id:
            from magnus.errors import NoRunContextError

            raise NoRunContextError("the tensorboard tracker tracks nothing outside a magnus run")
        if step not in self._writers:
            from tensorboardX import SummaryWriter

            folder = os.path.join(self.log_dir, encode_file_name(self._run_id))
            if step:
                folder = os.path.join(folder, encode_file_name(step))
            self._writers[step] = SummaryWriter(logdir=folder, flush_secs=5)
        return self._writers[step]

    def _close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def _session_end(status: int) -> bytes:
    """The hparams plugin's ``session_end_info`` with ``status``, as plugin data."""
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData, SessionEndInfo

    data = HParamsPluginData(version=0, session_end_info=SessionEndInfo(status=status, end_time_secs=time.time()))
    encoded: bytes = data.SerializeToString()
    return encoded


def _add_scalar(writer: "SummaryWriter", tag: str, value: float, step: int) -> None:
    """A scalar kept as a double (``add_scalar`` keeps a float32: 0.9 would read back 0.8999999761)."""
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboardX.proto.tensor_pb2 import TensorProto
    from tensorboardX.proto.types_pb2 import DT_DOUBLE

    metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
    tensor = TensorProto(dtype=DT_DOUBLE, double_val=[float(value)])
    writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, tensor=tensor, metadata=metadata)]), step)
