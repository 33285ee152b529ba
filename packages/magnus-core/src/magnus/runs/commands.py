"""The ``magnus runs`` command group: list, show, diff, report.

Each command reads the run log store the configuration file names (``-c``, or
``MAGNUS_CONFIG_FILE``; with neither, ``.run_log_store/`` in the working folder); only this
module knows about click, and the modules doing the work are imported when a command runs, so
``magnus --help`` does not load them.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import click

Command = Callable[..., Any]
Decorator = Callable[[Command], Command]


def _config_option(command: Command) -> Command:
    return click.option(
        "-c",
        "--config-file",
        default="",
        help="Configuration file naming the run log store (or MAGNUS_CONFIG_FILE; default: .run_log_store/ here).",
    )(command)


def build_group(reports_errors: Decorator, log_level_option: Decorator) -> click.Group:
    """The group, its commands wrapped by the CLI's error reporting (one line, exit 2 for bad input)."""

    @click.group("runs")
    def runs() -> None:
        """Browse the runs of a run log store: list, show, diff, report."""

    @runs.command("list")
    @_config_option
    @click.option("--status", default="", help="Only runs with this status (SUCCESS, FAIL, PROCESSING).")
    @click.option("--tag", default="", help="Only runs with this tag.")
    @click.option("--since", default="", help="Only runs started since: 2h, 3d, 1w ago, or a date/time.")
    @click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many runs (the newest).")
    @log_level_option
    @reports_errors
    def list_runs(config_file: str, status: str, tag: str, since: str, limit: Optional[int], log_level: str) -> None:
        """List runs, newest first: id, status, tag, start, duration.

        A run whose log does not read back is left out, with one line on stderr saying so.
        """
        from magnus.datastore.listing import RunQuery
        from magnus.runs.listing import format_table, parse_since
        from magnus.runs.store import open_store
        from magnus.terminal import for_terminal

        query = RunQuery(status=status.upper(), tag=tag, since=parse_since(since) if since else None, limit=limit)
        listing = open_store(config_file).list_runs(query)
        click.echo(format_table(listing.runs), nl=False)
        for unreadable in listing.unreadable:
            click.echo(for_terminal(f"skipped {unreadable}"), err=True)

    @runs.command("show")
    @click.argument("run_id")
    @_config_option
    @click.option("--json", "as_json", is_flag=True, help="Print the whole run log (magnus 0.5.1's JSON layout).")
    @click.option("--step", default="", help="Only this step (a name, or a branch step's name as the tree shows it).")
    @log_level_option
    @reports_errors
    def show(run_id: str, config_file: str, as_json: bool, step: str, log_level: str) -> None:
        """Show one run as a tree of steps and branches: status, duration, attempts, message."""
        from magnus.runs.store import find_step, open_store, read_run

        run_log = read_run(open_store(config_file), run_id)
        if step:
            found = find_step(run_log, step)
            run_log = run_log.model_copy(update={"steps": {found.internal_name: found}})
        if as_json:
            from magnus.terminal import json_for_terminal

            click.echo(json_for_terminal(run_log.model_dump_json(indent=4)))
            return
        from magnus.runs.tree import render_tree

        click.echo(render_tree(run_log), nl=False)

    @runs.command("diff")
    @click.argument("first_run")
    @click.argument("second_run")
    @_config_option
    @log_level_option
    @reports_errors
    def diff(first_run: str, second_run: str, config_file: str, log_level: str) -> None:
        """What changed from FIRST_RUN to SECOND_RUN: parameters, code, data catalog, step statuses."""
        from magnus.runs.diff import render_diff
        from magnus.runs.store import open_store, read_run

        store = open_store(config_file)
        click.echo(render_diff(read_run(store, first_run), read_run(store, second_run)), nl=False)

    @runs.command("why")
    @click.argument("run_id")
    @click.argument("step")
    @_config_option
    @click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
    @log_level_option
    @reports_errors
    def why(run_id: str, step: str, config_file: str, as_json: bool, log_level: str) -> None:
        """Why STEP of RUN_ID ran or was reused: the run it came from, or what differs from its last execution."""
        from magnus.runs.store import find_step, open_store, read_run
        from magnus.runs.why import explain, render

        store = open_store(config_file)
        run_log = read_run(store, run_id)
        explanation = explain(store, run_log, find_step(run_log, step))
        if as_json:
            from magnus.terminal import json_for_terminal

            click.echo(json_for_terminal(explanation.to_json()))
            return
        click.echo(render(explanation), nl=False)

    @runs.command("report")
    @click.argument("run_id")
    @click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The HTML file to write.")
    @_config_option
    @log_level_option
    @reports_errors
    def report(run_id: str, output: str, config_file: str, log_level: str) -> None:
        """Write one self-contained HTML page of a run: diagram, timeline, parameters, metrics, catalog."""
        from magnus.errors import UserInputError
        from magnus.runs.report import render_report
        from magnus.runs.store import open_store, read_run

        page = render_report(read_run(open_store(config_file), run_id))
        try:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(page)
        except OSError as exc:
            raise UserInputError(f"--output {output}: cannot write: {exc.strerror}") from None
        click.echo(f"wrote {output}", err=True)

    return runs
