"""The ``magnus`` command line, with magnus 0.5.1's commands and options.

Heavy modules are imported inside the commands, so ``magnus --help`` stays fast. Every expected
error is printed as one line on stderr, with exit code 2 (input refused), 1 (the run failed) or
130 (interrupted); 0 means the run's status is SUCCESS (or it was handed to an engine such as
Argo), never the code a task passed to ``sys.exit``. What users wrote (a step's message, a
name) is shown escaped in it (:mod:`magnus.terminal`): one line stays one line.
``--log-level DEBUG`` or ``MAGNUS_DEBUG=1`` shows tracebacks.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Sequence, TypeVar

import click

from magnus import defaults
from magnus.runs.commands import build_group as build_runs_group
from magnus.terminal import for_terminal
from magnus.version import __version__

if TYPE_CHECKING:
    from magnus.runtime import request
    from magnus.runtime.events import RunObserver
    from magnus.runtime.services import RunOptions
    from magnus.supervision import ChildEnded

F = TypeVar("F", bound=Callable[..., Any])
# 128 + SIGINT, what shells report for a program Ctrl-C stopped.
INTERRUPTED_EXIT_CODE = 130
LOG_LEVELS = click.Choice(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "FATAL"], case_sensitive=False)


def _debugging(log_level: str) -> bool:
    from magnus.defaults import ENV_DEBUG

    return log_level.upper() == "DEBUG" or os.environ.get(ENV_DEBUG, "") not in ("", "0")


def _reports_errors(command: F) -> F:
    """Turn magnus errors into one line and an exit code; show tracebacks only when debugging.

    Ctrl-C is one line too, ``Error: interrupted``, with exit code 130 (the run log of a run it
    cut short says FAIL, and its step ``interrupted``); SIGTERM (``kill``, a container or pod
    stopped) is taken as Ctrl-C.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        log_level = str(kwargs.get("log_level") or "WARNING")
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("magnus").setLevel(log_level.upper())
        from magnus.errors import MagnusError
        from magnus.runtime.signals import sigterm_interrupts

        try:
            with sigterm_interrupts():
                return command(*args, **kwargs)
        except MagnusError as exc:
            if _debugging(log_level):
                raise
            click.echo(for_terminal(f"Error: {exc}"), err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            if _debugging(log_level):
                raise
            click.echo("Error: interrupted", err=True)
            sys.exit(INTERRUPTED_EXIT_CODE)
        except Exception as exc:
            if _debugging(log_level):
                raise
            click.echo(
                for_terminal(
                    f"Error: internal error: {type(exc).__name__}: {exc} (run with --log-level DEBUG for the traceback)"
                ),
                err=True,
            )
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def _progress(quiet: bool, resume: Sequence[str] = ()) -> "RunObserver":
    """What watches a run started here: a renderer on stderr (summary at the very end), or nobody."""
    from magnus.runtime.events import NO_OBSERVER

    if quiet:
        return NO_OBSERVER
    from magnus.progress import ProgressRenderer

    renderer = ProgressRenderer(resume=resume)
    click.get_current_context().call_on_close(renderer.summary)  # after any error line
    return renderer


_quiet = click.option("-q", "--quiet", is_flag=True, help="Print no progress and no summary (errors only).")
_log_level = click.option("--log-level", default="WARNING", type=LOG_LEVELS, show_default=True, help="Logging level.")


def _log_level_option(command: F) -> F:
    return _log_level(command)


def _common(command: F) -> F:
    """Options every running command takes."""
    options = [
        click.option(
            "-c", "--config-file", default="", help="Configuration file of the services (or MAGNUS_CONFIG_FILE)."
        ),
        click.option("-p", "--parameters-file", default="", help="YAML file of the initial parameters."),
        _log_level,
        click.option("--tag", default="", help="A tag recorded in the run log (groups runs)."),
        click.option(
            "--cache",
            is_flag=True,
            help="Reuse an earlier execution of each step with the same code, parameters, files and settings "
            "(a step's `cache: false` wins).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _launch(parsed: "request.LaunchRequest") -> None:
    """Do one unit of a run walked elsewhere, as ``parsed`` asks; exit 1 unless it succeeded."""
    from magnus import defaults
    from magnus.launched import execute_request

    status = execute_request(parsed)
    if status not in (defaults.SUCCESS, defaults.PROCESSING):  # a fan-out that succeeded leaves it in progress
        click.echo(for_terminal(f"Error: step '{parsed.step}' of run '{parsed.run.run_id}' ended {status}"), err=True)
        sys.exit(1)


def _step_request(step_name: Optional[str], pipeline_file: str, file_option: str, **options: Any) -> "request.RunStep":
    """``execute_single_node``'s request: RUN_ID PIPELINE_FILE STEP, or magnus 0.5.1's RUN_ID STEP -f PIPELINE_FILE."""
    if step_name is None:
        pipeline_file, step_name = file_option or "pipeline.yaml", pipeline_file
    from magnus.runtime.request import RunStep

    return RunStep.from_options(**options, pipeline_file=pipeline_file, step_name=step_name)


def _fan_request(**options: Any) -> "request.LaunchRequest":
    from magnus.runtime.request import fan_request

    return fan_request(**options)


def _branch_request(**options: Any) -> "request.WalkBranch":
    from magnus.runtime.request import WalkBranch

    return WalkBranch.from_options(**options)


# What each launch command's options make: the one reading of the grammar request.to_argv() writes.
_REQUESTS: Dict[str, Callable[..., "request.LaunchRequest"]] = {
    defaults.EXECUTE_COMMAND: _step_request,
    defaults.FAN_COMMAND: _fan_request,
    defaults.BRANCH_COMMAND: _branch_request,
}


def parse_request(argv: Sequence[str]) -> "request.LaunchRequest":
    """The request a launch command line carries (``argv`` without the program), read as ``magnus`` reads it.

    Raises:
        UserInputError: not the command line of a launch request.
    """
    from magnus.errors import UserInputError

    command = cli.commands.get(argv[0]) if argv and argv[0] in _REQUESTS else None
    if command is None:
        raise UserInputError(f"not a launch request: expected one of {', '.join(_REQUESTS)}, got {' '.join(argv[:1])}")
    try:
        context = command.make_context(argv[0], list(argv[1:]), resilient_parsing=False)
    except click.ClickException as exc:
        raise UserInputError(f"not a launch request: {exc.format_message()}") from None
    return _REQUESTS[argv[0]](**context.params)


def _finish(run_log: Any) -> None:
    """Exit non-zero with the failed step named when the run failed."""
    from magnus.progress import failure_line

    failure = failure_line(run_log)  # none for a run handed to an orchestrator
    if failure:
        click.echo(failure, err=True)
        sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="magnus")
def cli() -> None:
    """Define a pipeline once; run it locally, in containers, on Argo or on SLURM by switching the config."""


_run_id = click.option("--run-id", default="", help="Id of the run (generated when not given).")
# The pipeline a command reads, as a user names it (execute, graph, plan).
_pipeline_file = click.option(
    "-f",
    "--file",
    "pipeline_file",
    default="pipeline.yaml",
    show_default=True,
    help="The pipeline: a YAML file, a python file (x.py, x.py:name) or module:name.",
)


def _run_options(options: Dict[str, Any], pipeline_file: str = "") -> "RunOptions":
    """A running command's options as the run's (``config_file`` ... as click names them)."""
    from magnus.runtime.services import RunOptions

    return RunOptions(
        pipeline_file=pipeline_file,
        configuration_file=options["config_file"],
        parameters_file=options["parameters_file"],
        run_id=options.get("run_id", ""),
        tag=options["tag"],
        use_cached=options.get("use_cached", ""),
        cache=bool(options.get("cache", False)),
    )


@cli.command("execute")
@_pipeline_file
@_common
@_run_id
@click.option("--use-cached", default="", help="Resume run USE_CACHED: steps that succeeded there are not run again.")
@_quiet
@_reports_errors
def execute(pipeline_file: str, quiet: bool, **options: Any) -> None:
    """Run a pipeline, showing its progress and how it ended on stderr."""
    from magnus.entrypoints import run_pipeline
    from magnus.python_pipeline import load_any
    from magnus.runtime.command_line import execute_argv

    run = _run_options(options, pipeline_file)
    events = _progress(quiet, execute_argv(run, resume=True))
    _finish(run_pipeline(load_any(pipeline_file), run, full=False, events=events))


@cli.command(defaults.EXECUTE_COMMAND)
@click.argument("run_id")
@click.argument("pipeline_file")
@click.argument("step_name", required=False)
@click.option("-f", "--file", "file_option", default="", help="The pipeline file (magnus 0.5.1's form).")
@click.option("--map-variable", default="", help="JSON of the map values this step runs at.")
@click.option("--retry", default="", help="Earlier launches of this step by the engine (Argo's {{retries}}).")
@click.option("--use-cached", default="", help="The run being resumed: the step is reused if it succeeded there.")
@click.option("--then-end", is_flag=True, help="Once the step succeeded, also record its dag's success node after it.")
@_common
@_reports_errors
def execute_single_node(**options: Any) -> None:
    """Run one step of a run walked elsewhere (used inside containers and pods).

    RUN_ID PIPELINE_FILE STEP_NAME, or magnus 0.5.1's RUN_ID STEP_NAME -f PIPELINE_FILE.
    """
    _launch(_step_request(**options))


def _catalog_options(command: F) -> F:
    """magnus 0.5.1's options to put a single task's outputs in the catalog."""
    command = click.option(
        "-put", "--put-in-catalog", multiple=True, help="Files (or globs) to put in the catalog after the run."
    )(command)
    return click.option("-d", "--data-folder", default="data/", show_default=True, help="The catalog data folder.")(
        command
    )


def _run_task(task: Dict[str, Any], name: str, options: Dict[str, Any]) -> None:
    """Run one task as a pipeline of its own (magnus 0.5.1's -put/-d put its outputs in the catalog)."""
    from magnus.entrypoints import execute_task

    if options["put_in_catalog"]:
        task["catalog"] = {"put": list(options["put_in_catalog"]), "compute_data_folder": options["data_folder"]}
    _finish(execute_task(task, name, _run_options(options), events=_progress(options["quiet"])))


@cli.command("execute_function")
@click.argument("command")
@_common
@_catalog_options
@_run_id
@click.option("--step-name", default="", help="Name of the step (the function's name by default).")
@_quiet
@_reports_errors
def execute_function(command: str, step_name: str, **options: Any) -> None:
    """Run one python function (module.function) as a pipeline of one step."""
    name = step_name or command.rpartition(".")[2] or command
    _run_task({"command": command, "command_type": "python"}, name, options)


@cli.command("execute_notebook")
@click.argument("filename")
@click.option("--notebook-output-path", default="", help="Where the executed notebook is written.")
@_common
@_catalog_options
@_run_id
@_quiet
@_reports_errors
def execute_notebook(filename: str, notebook_output_path: str, **options: Any) -> None:
    """Run one notebook as a pipeline of one step (needs magnus-task-notebook)."""
    from magnus.entrypoints import require_task_type

    require_task_type("notebook")
    task: Dict[str, Any] = {"command": filename, "command_type": "notebook"}
    if notebook_output_path:
        task["notebook_output_path"] = notebook_output_path
    name = os.path.splitext(os.path.basename(filename))[0].replace(".", "_") or "notebook"
    _run_task(task, name, options)


@cli.command(defaults.FAN_COMMAND)
@click.argument("run_id")
@click.argument("step_name")
@click.option("-f", "--file", "pipeline_file", default="pipeline.yaml", show_default=True, help="The pipeline YAML.")
@click.option(
    "-m", "--mode", type=click.Choice(["in", "out", "next"]), required=True, help="Fan out, fan in, or a loop's next."
)
@click.option("--map-variable", default="", help="JSON of the map values this step runs at.")
@click.option("--iterations-file", default="", help="Out, next: write the branches' map values here (a JSON list).")
@click.option("--use-cached", default="", help="The run being resumed: the step keeps saying so if it succeeded there.")
@_common
@_reports_errors
def fan(**options: Any) -> None:
    """Fan a composite step out to its branches, or in from them; start a loop's next iteration."""
    _launch(_fan_request(**options))


@cli.command(defaults.BRANCH_COMMAND)
@click.argument("run_id")
@click.argument("pipeline_file")
@click.argument("step_name")
@click.argument("branch")
@click.option("--map-variable", default="", help="JSON of the map values the branch's steps run at.")
@click.option("--use-cached", default="", help="The run being resumed: its successful steps are reused.")
@_common
@_reports_errors
def execute_branch(**options: Any) -> None:
    """Walk one branch of a composite step of a run walked elsewhere, its steps in this process.

    BRANCH is the branch's name in the pipeline (a map's as EACH.%); the composite step must have
    been fanned out (its branch logs recorded) by the process walking the run.
    """
    _launch(_branch_request(**options))


@cli.command("graph")
@_pipeline_file
@click.option("--format", "output_format", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
@_log_level
@_reports_errors
def graph(pipeline_file: str, output_format: str, log_level: str) -> None:
    """Print the pipeline as a Mermaid flowchart or a Graphviz dot graph."""
    from magnus.diagram import FORMATS
    from magnus.python_pipeline import load_any

    click.echo(FORMATS[output_format](load_any(pipeline_file).graph), nl=False)


@cli.command("plan")
@_pipeline_file
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@_log_level
@_reports_errors
def plan(pipeline_file: str, output_format: str, log_level: str) -> None:
    """Print the pipeline's execution plan: its units (steps, fan-outs, branches, fan-ins, ends), where each leads."""
    from magnus.python_pipeline import load_any

    compiled = load_any(pipeline_file).plan
    click.echo(compiled.to_json() if output_format == "json" else compiled.to_text(), nl=output_format == "json")


@cli.command("init")
@click.argument("folder", default=".")
@click.option("--force", is_flag=True, help="Write into a folder that is not empty, replacing files of the same names.")
@_log_level
@_reports_errors
def init(folder: str, force: bool, log_level: str) -> None:
    """Create a project of your own in FOLDER (default: here): a pipeline, its steps, parameters, a config.

    A folder that holds anything is refused unless --force is given.
    """
    from pathlib import Path

    from magnus.scaffold import NEXT_COMMANDS, create_project

    written = create_project(Path(folder), force)
    click.echo(for_terminal(f"created in {folder}: {', '.join(written)}"))
    click.echo("next:")
    for command in ([f"cd {folder}"] if folder != "." else []) + list(NEXT_COMMANDS):
        click.echo(for_terminal(f"  {command}"))


@cli.command("lineage")
@click.argument("path")
@click.option(
    "--run", "run_id", default="", help="The run that put PATH (default: this file's content, or the newest run)."
)
@click.option(
    "-c", "--config-file", default="", help="Configuration file naming the run log store (or MAGNUS_CONFIG_FILE)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the lineage as JSON.")
@_log_level
@_reports_errors
def lineage(path: str, run_id: str, config_file: str, as_json: bool, log_level: str) -> None:
    """Where the catalog file PATH came from: the step and run that put it, its code version, parameters
    and the files it read, recursively down to files no step put."""
    from magnus.runs.lineage import lineage as lineage_of
    from magnus.runs.lineage import render
    from magnus.runs.store import open_store

    tree = lineage_of(open_store(config_file), path, run_id)
    if as_json:
        from magnus.terminal import json_for_terminal

        click.echo(json_for_terminal(tree.to_json()))
        return
    click.echo(render(tree), nl=False)


# `magnus runs list|show|diff|report`: the group's module imports click only; its work, when run.
cli.add_command(build_runs_group(_reports_errors, _log_level_option))


# The commands that run user code in their own process, each with whether it walks a whole run: they
# run in a child this process watches, so a task ending the interpreter fails its step instead of
# ending the command (see magnus.supervision).
_SUPERVISED = {
    "execute": True,
    "execute_function": True,
    "execute_notebook": True,
    defaults.EXECUTE_COMMAND: False,
    defaults.BRANCH_COMMAND: False,
}


def main(argv: Optional[list[str]] = None) -> None:
    """``magnus``: the commands running user code run it in a supervised child process."""
    arguments = sys.argv[1:] if argv is None else argv
    walks_run = _SUPERVISED.get(arguments[0]) if arguments else None
    if walks_run is not None:
        from magnus.supervision import supervise

        ended = supervise()
        if ended is not None:  # in the supervising process, once the child ended
            sys.exit(_child_ended(ended, walks_run))
    cli.main(args=argv, prog_name="magnus")


def _child_ended(ended: "ChildEnded", walked_run: bool) -> int:
    """The exit code of a supervised command, from how its child ended; a death recorded and said in one line."""
    if ended.normally and ended.exit_code is not None:
        return ended.exit_code
    from magnus.entrypoints import record_lost_process

    try:
        line = record_lost_process(ended.report, ended.how(), ended.interrupted, walked_run)
    except Exception as exc:  # noqa: BLE001 - whatever broke the store too: the death is still said
        line = f"magnus's process {ended.how()}; it could not be recorded: {type(exc).__name__}: {exc}"
    click.echo(for_terminal(f"Error: {line}"), err=True)
    return INTERRUPTED_EXIT_CODE if ended.interrupted else 1


if __name__ == "__main__":
    main()
