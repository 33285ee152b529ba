"""A loop's iterations as Azure ML's ``do_while`` carries them, written on the compute.

Core decides a loop's iterations and writes the map position of the one to run as a JSON list
(``magnus fan ... -m out|next --iterations-file F``: one position, or ``[]`` when the loop ends).
``do_while`` runs its body again while a boolean *control output* of the body is true, and hands
an output of the body to the body's input on the next turn (its ``mapping``). This module turns
core's list into both:

- the position, as the file ``map_variable`` of an output folder, which the body reads into
  ``--map-variable`` on its next turn (the loop's fan-out writes the first one);
- the control output ``go_on``: ``true`` or ``false`` in the output's file and, on Azure ML, in the
  properties of the node's run (``azureml.pipeline.control``), where ``do_while`` reads control
  outputs: what mldesigner writes for a component it runs, sent here with the standard library.

Run as ``python -m magnus_executor_azureml.iteration ITERATIONS_FILE POSITION_FOLDER [GO_ON_OUTPUT]``;
it imports no azure.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path
from typing import List, Mapping, Optional

from magnus_executor_azureml.constants import GO_ON, POSITION_FILE

# The run property holding a node's control outputs (a JSON object: output name -> value).
CONTROL_OUTPUTS_PROPERTY = "azureml.pipeline.control"


def write_position(iterations: str, folder: Path) -> bool:
    """Write the position of core's ``iterations`` into ``folder``; whether there is one (the loop goes on)."""
    positions: List[str] = json.loads(iterations)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / POSITION_FILE).write_text(positions[0] if positions else "")
    return bool(positions)


def run_history_url(environment: Mapping[str, str]) -> Optional[str]:
    """Where a node running on Azure ML patches its run's properties; None off Azure ML.

    Azure ML gives every job its MLflow tracking URI (``azureml://<region>.api.azureml.ms/mlflow/
    v1.0/subscriptions/.../workspaces/<name>``), experiment and run; run history answers at the
    same host and path under ``history/v1.0``.
    """
    tracking = environment.get("MLFLOW_TRACKING_URI", "")
    experiment, run = environment.get("MLFLOW_EXPERIMENT_ID", ""), environment.get("MLFLOW_RUN_ID", "")
    if not tracking.startswith("azureml://") or not experiment or not run:
        return None
    host = "https://" + tracking[len("azureml://") :].replace("/mlflow/v2.0/", "/mlflow/v1.0/")
    return f"{host.replace('/mlflow/v1.0/', '/history/v1.0/')}/experimentids/{experiment}/runs/{run}"


def tell_azure_ml(go_on: bool, environment: Mapping[str, str]) -> None:
    """Record the control output in the node's run, where ``do_while`` reads it (nothing off Azure ML).

    Raises:
        OSError: run history refused it (the node fails, and with it the loop: never a silent stop).
    """
    url = run_history_url(environment)
    if url is None:
        return
    body = {"runId": environment["MLFLOW_RUN_ID"], "properties": {CONTROL_OUTPUTS_PROPERTY: json.dumps({GO_ON: go_on})}}
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="PATCH",
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {environment.get('MLFLOW_TRACKING_TOKEN', '')}",
        },
    )
    with urllib.request.urlopen(request, timeout=60):
        pass


def main(argv: Optional[List[str]] = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) not in (2, 3):
        print(
            "usage: python -m magnus_executor_azureml.iteration ITERATIONS_FILE POSITION_FOLDER [GO_ON_OUTPUT]",
            file=sys.stderr,
        )
        return 2
    go_on = write_position(Path(arguments[0]).read_text(), Path(arguments[1]))
    if len(arguments) == 3:
        target = Path(arguments[2])
        if target.is_dir():  # Azure ML may hand an output as a folder: the value is its file "output"
            target = target / "output"
        target.write_text(json.dumps(go_on))
        try:
            tell_azure_ml(go_on, os.environ)
        except OSError as exc:
            print(f"Error: Azure ML did not record the loop's control output '{GO_ON}': {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
