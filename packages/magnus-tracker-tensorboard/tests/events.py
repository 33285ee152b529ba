"""What TensorBoard reads from a folder of event files, read with tensorboard's own event reader."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Tuple

from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.util import tensor_util


@dataclass
class Folder:
    """One TensorBoard run (a folder): scalars in the order written, texts, hparams, the end status."""

    scalars: Dict[str, List[Tuple[int, float]]] = field(default_factory=dict)
    texts: Dict[str, str] = field(default_factory=dict)
    hparams: Dict[str, Any] = field(default_factory=dict)
    end_status: int = 0


def read_folder(folder: Path) -> Folder:
    """Every event file directly in ``folder``, read in the order written."""
    seen = Folder()
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                if plugin == "scalars":
                    number = float(tensor_util.make_ndarray(value.tensor).item())
                    seen.scalars.setdefault(value.tag, []).append((event.step, number))
                elif plugin == "text":
                    text = tensor_util.make_ndarray(value.tensor).item()
                    seen.texts[value.tag.removesuffix("/text_summary")] = text.decode()
                elif plugin == "hparams":
                    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                    if data.HasField("session_start_info"):
                        for name, hparam in data.session_start_info.hparams.items():
                            seen.hparams[name] = getattr(hparam, hparam.WhichOneof("kind"))
                    if data.HasField("session_end_info"):
                        seen.end_status = data.session_end_info.status
    return seen


def read_run(log_dir: Path, run_id: str) -> Dict[str, Folder]:
    """The folders of a run by their path under the run's folder ('' for the run's own)."""
    root = log_dir / run_id
    folders = {path.parent for path in root.rglob("events.out.tfevents.*")}
    return {"" if folder == root else str(folder.relative_to(root)): read_folder(folder) for folder in folders}
