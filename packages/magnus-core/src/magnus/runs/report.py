"""``magnus runs report``: one run as a single self-contained HTML page.

The page needs nothing but itself: styles are inline, the pipeline diagram (Graphviz SVG) and the
timeline are inline SVG, there is no script and no font, image or stylesheet to fetch, so it opens
offline and can be attached to a ticket or archived with the run. Everything taken from the run
log is HTML-escaped. A run whose pipeline cannot be drawn (no pipeline recorded, a nested dag file
gone, Graphviz missing) gets a note saying why instead of the diagram; the rest of the page stays.
"""

from __future__ import annotations

import json
import shlex
from datetime import datetime
from html import escape
from typing import Any, Iterable, List, Sequence

from magnus.datastore.listing import summarize, walk_steps
from magnus.datastore.models import RunLog
from magnus.diagram import NOT_RUN, STATUS_COLOURS
from magnus.errors import MagnusError
from magnus.runs.diff import describe_code
from magnus.runs.listing import format_duration, format_time
from magnus.runs.pipeline import status_svg
from magnus.runs.timeline import timeline_svg
from magnus.runs.tree import render_tree
from magnus.version import __version__

_STYLE = """
body { font-family: sans-serif; margin: 24px 32px; color: #202124; }
h1 { font-size: 22px; margin: 0 0 8px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; }
.status { padding: 2px 10px; border-radius: 10px; font-weight: bold; font-size: 14px; }
table { border-collapse: collapse; font-size: 13px; }
td, th { padding: 3px 12px 3px 0; text-align: left; vertical-align: top; }
th { color: #555; font-weight: normal; } code, pre { font-family: monospace; font-size: 12px; }
pre { background: #f6f8fa; padding: 10px; overflow-x: auto; }
.diagram svg, svg.timeline { max-width: 100%; height: auto; } .empty, .note { color: #777; font-style: italic; }
.legend span { display: inline-block; padding: 1px 8px; margin-right: 6px; border-radius: 3px; font-size: 12px; }
"""


def render_report(run_log: RunLog) -> str:
    """The whole page for ``run_log`` (its steps included)."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>magnus run {escape(run_log.run_id)}</title>",
            f"<style>{_STYLE}</style></head><body>",
            *_header(run_log),
            '<h2>Pipeline</h2><section id="pipeline" class="diagram">',
            _diagram(run_log),
            _legend(),
            '</section><h2>Timeline</h2><section id="timeline">',
            timeline_svg(run_log),
            '</section><h2>Steps</h2><section id="steps">',
            f"<pre>{escape(render_tree(run_log))}</pre>",
            '</section><h2>Parameters</h2><section id="parameters">',
            _table(("name", "value"), [(name, _json(value)) for name, value in run_log.parameters.items()]),
            '</section><h2>Metrics</h2><section id="metrics">',
            _table(("step", "metric", "value"), _metrics(run_log)),
            '</section><h2>Cache</h2><section id="cache">',
            _table(("step", "cache", "why"), _cache(run_log)),
            '</section><h2>Data lineage</h2><section id="lineage" class="diagram">',
            _lineage(run_log),
            '</section><h2>Data catalog</h2><section id="catalog">',
            _table(("file", "stage", "step", "hash (sha256)"), _catalog(run_log)),
            '</section><h2>Code</h2><section id="code">',
            _table(("code", "steps"), _code(run_log)),
            "</section>",
            f'<p class="note">Made by magnus {escape(__version__)} on {datetime.now():%Y-%m-%d %H:%M}.</p>',
            "</body></html>",
        ]
    )


def _header(run_log: RunLog) -> List[str]:
    summary = summarize(run_log)
    colour = STATUS_COLOURS.get(run_log.status, STATUS_COLOURS[NOT_RUN])
    facts = [
        ("tag", run_log.tag or "-"),
        ("started", format_time(summary.start)),
        ("duration", format_duration(summary)),
        ("pipeline", str(run_log.run_config.get("pipeline_file") or "-")),
        ("dag hash", run_log.dag_hash or "-"),
    ]
    if run_log.original_run_id:
        facts.append(("resumed from", run_log.original_run_id))
    return [
        f'<h1>Run <code>{escape(run_log.run_id)}</code> <span class="status" id="run-status" '
        f'style="background:{colour}">{escape(run_log.status)}</span></h1>',
        _table(("", ""), facts, header=False),
    ]


def _diagram(run_log: RunLog) -> str:
    try:
        svg = status_svg(run_log)
    except MagnusError as exc:
        return f'<p class="empty">The pipeline is not drawn: {escape(str(exc))}.</p>'
    return svg[svg.find("<svg") :]  # the element only, without the XML prolog and doctype


def _legend() -> str:
    spans = "".join(
        f'<span style="background:{colour}">{escape(status)}</span>'
        for status, colour in STATUS_COLOURS.items()
        if status != "CREATED"
    )
    return f'<p class="legend">{spans}</p>'


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], header: bool = True) -> str:
    body = ["<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows]
    if not body:
        return '<p class="empty">None recorded.</p>'
    head = "<tr>" + "".join(f"<th>{escape(name)}</th>" for name in headers) + "</tr>" if header else ""
    return f"<table>{head}{''.join(body)}</table>"


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _metrics(run_log: RunLog) -> List[Sequence[str]]:
    rows: List[Sequence[str]] = []
    for step in walk_steps(run_log):
        for name, value in step.user_defined_metrics.items():
            if isinstance(value, dict):
                value = ", ".join(f"{point}: {_json(number)}" for point, number in value.items())
            else:
                value = _json(value)
            rows.append((step.internal_name, name, value))
    return rows


def _catalog(run_log: RunLog) -> List[Sequence[str]]:
    return [
        (entry.name, entry.stage, step.internal_name, entry.data_hash)
        for step in walk_steps(run_log)
        for entry in step.data_catalog
    ]


def _cache(run_log: RunLog) -> List[Sequence[str]]:
    """Each step with a cache key: reused (from which run and step) or run, and the command explaining why."""
    rows: List[Sequence[str]] = []
    for step in walk_steps(run_log):
        if step.cache is None:
            continue
        origin = step.cache.reused_from
        if origin is not None:
            said = f"reused from run {origin.run_id}, step {origin.step}" + (
                f" at {origin.time}" if origin.time else ""
            )
        else:
            said = f"ran (key {step.cache.key[:12]}, caching {'on' if step.cache.enabled else 'off'})"
        rows.append(
            (step.internal_name, said, shlex.join(["magnus", "runs", "why", run_log.run_id, step.internal_name]))
        )
    return rows


def _lineage(run_log: RunLog) -> str:
    """The files of the run and the steps that got and put them, as a Graphviz diagram (a reused step dashed)."""
    from magnus.runs.pipeline import dot_svg

    lines = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="sans-serif", fontsize=11];']
    files: dict[str, str] = {}
    for step in walk_steps(run_log):
        entries = [entry for entry in step.data_catalog if entry.stage in ("get", "put")]
        if not entries:
            continue
        step_id = f"s{len(lines)}"
        origin = step.cache.reused_from if step.cache else None
        label = step.internal_name + (f"\nreused from {origin.run_id}" if origin else "")
        style = ", style=dashed" if origin else ""
        lines.append(f"  {step_id} [shape=box, label={_quoted(label)}{style}];")
        for entry in entries:
            key = f"{entry.name}@{entry.data_hash}"
            file_id = files.setdefault(key, f"f{len(files)}")
            lines.append(f"  {file_id} [shape=note, label={_quoted(entry.name + chr(10) + entry.data_hash[:12])}];")
            edge = f"{file_id} -> {step_id}" if entry.stage == "get" else f"{step_id} -> {file_id}"
            lines.append(f"  {edge};")
    if len(lines) == 3:
        return '<p class="empty">No file moved through the catalog.</p>'
    try:
        svg = dot_svg("\n".join(dict.fromkeys(lines)) + "\n}\n")
    except MagnusError as exc:
        return f'<p class="empty">The lineage is not drawn: {escape(str(exc))}.</p>'
    return svg[svg.find("<svg") :]


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _code(run_log: RunLog) -> List[Sequence[str]]:
    steps_by_code: dict[str, List[str]] = {}
    for step in walk_steps(run_log):
        if step.code_identities:
            steps_by_code.setdefault(describe_code(step.code_identities), []).append(step.internal_name)
    return [
        (code, f"{len(steps)} steps" if len(steps) > 3 else ", ".join(steps)) for code, steps in steps_by_code.items()
    ]
