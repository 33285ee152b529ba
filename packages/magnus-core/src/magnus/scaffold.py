"""``magnus init [FOLDER]``: a project of your own that runs as created.

The files are the smallest complete project: a pipeline of two python steps, the module holding
them, their parameters, a configuration that keeps runs (a file-system run log store, and a
file-system catalog when magnus-catalog-fs is installed), a ``.gitignore`` for what runs leave
behind, and a README with the next commands. Every parameter has a default in ``steps.py``, so
``magnus execute`` alone runs it too.

Nothing is overwritten unless asked: a folder that holds anything is refused (``force``: write
into it, replacing files of the same names).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

from magnus import defaults
from magnus.errors import UserInputError
from magnus.plugins import is_installed

PIPELINE = """\
# The pipeline: two python steps, each a function of steps.py.
# Run it:  magnus execute -c config.yaml -p parameters.yaml
dag:
  description: Prepare some data, then train on it.
  start_at: prepare
  steps:
    prepare:
      type: task
      command: steps.prepare  # module.function, imported from this folder
      next: train
    train:
      type: task
      command: steps.train
      next: success
    success:
      type: success
    fail:
      type: fail
"""

STEPS = '''\
"""The steps of pipeline.yaml: plain functions.

Each argument is a parameter, passed by name (from parameters.yaml, or returned by an earlier
step); a dict a step returns sets parameters for the steps after it.
"""

from magnus import track_this


def prepare(rows: int = 100) -> dict:
    """Make the data; its total becomes a parameter of the next step."""
    data = list(range(rows))
    return {"total": sum(data)}


def train(total: int, learning_rate: float = 0.1) -> None:
    """Train on the data; the score is recorded as a metric of the run."""
    score = round(1 - 1 / (1 + learning_rate * total), 4)
    print(f"trained on a total of {total} at learning rate {learning_rate}: score {score}")
    track_this(score=score)
'''

PARAMETERS = """\
# The initial parameters of a run (-p parameters.yaml); each step takes those it names.
rows: 1000
learning_rate: 0.01
"""

CONFIG_HEAD = f"""\
# Where runs are kept (-c config.yaml): run logs in {defaults.LOG_FOLDER}/, read by `magnus runs`
# and by a resumed run (--use-cached).
run_log_store:
  type: file-system
"""

CATALOG = f"""\
# Files steps put in the catalog (catalog: put/get in pipeline.yaml) go to {defaults.CATALOG_LOCATION}/<run id>/.
catalog:
  type: file-system
"""

CATALOG_TO_INSTALL = f"""\
# To keep the files steps put in the catalog (in {defaults.CATALOG_LOCATION}/<run id>/):
#   pip install magnus-catalog-fs
# then uncomment:
# catalog:
#   type: file-system
"""

GITIGNORE = f"""\
# What runs leave behind
{defaults.LOG_FOLDER}/
{defaults.CATALOG_LOCATION}/
.magnus/
__pycache__/
"""

# The commands after `magnus init`: run the pipeline, list the runs, show one.
NEXT_COMMANDS = (
    "magnus execute -c config.yaml -p parameters.yaml",
    "magnus runs list",
    "magnus runs show RUN_ID",
)

README = """\
# {name}

A magnus pipeline.

| File | What it is |
|---|---|
| `pipeline.yaml` | the pipeline: its steps and their order |
| `steps.py` | the python functions the steps run |
| `parameters.yaml` | the parameters a run starts with |
| `config.yaml` | where runs are kept (run logs, catalog) |

Next:

```shell
{commands}
```

Then, in Python (a notebook): `magnus.runs()[0].metrics`, `magnus.Run("RUN_ID").steps["train"]`.
A failed run prints the command that resumes it (`--use-cached RUN_ID`).
"""


def project_files(name: str) -> Dict[str, str]:
    """The files of a new project named ``name``, by file name."""
    catalog = CATALOG if is_installed("catalog", "file-system") else CATALOG_TO_INSTALL
    return {
        "pipeline.yaml": PIPELINE,
        "steps.py": STEPS,
        "parameters.yaml": PARAMETERS,
        "config.yaml": CONFIG_HEAD + catalog,
        ".gitignore": GITIGNORE,
        "README.md": README.format(name=name, commands="\n".join(NEXT_COMMANDS)),
    }


def create_project(folder: Path, force: bool = False) -> List[str]:
    """Write a new project into ``folder`` (made when missing); the names of the files written.

    Raises:
        UserInputError: ``folder`` is a file, or holds anything and ``force`` is not given.
    """
    if folder.exists() and not folder.is_dir():
        raise UserInputError(f"{folder}: is a file, not a folder")
    held = sorted(entry.name for entry in folder.iterdir()) if folder.is_dir() else []
    if held and not force:
        shown = ", ".join(held[:3]) + (", ..." if len(held) > 3 else "")
        raise UserInputError(
            f"{folder}: not empty (holds {shown}): magnus init writes a new project into an empty or new folder; "
            "pass --force to write its files there, replacing files of the same names"
        )
    folder.mkdir(parents=True, exist_ok=True)
    files = project_files(folder.resolve().name or "project")
    for name, content in files.items():
        (folder / name).write_text(content, encoding="utf-8")
    return list(files)
