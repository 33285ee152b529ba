"""Draw a trace exported by magnus's ``opentelemetry`` tracker (exporter ``file``) as an SVG timeline.

One row per span, nested under its parent, a bar from its start to its end (green: OK, red: error,
grey: no status), the run's own span on top; what the docs show of a trace (``docs/assets/trace.svg``)::

    python scripts/render_trace.py .traces/spans.jsonl docs/assets/trace.svg [TRACE_ID]

Any offline viewer of OTLP JSON would do; this keeps the picture reproducible without one.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any, Dict, List

ROW, LABEL, WIDTH, PAD = 22, 360, 520, 10
COLOURS = {"OK": "#3a9d5d", "ERROR": "#c8453b", "UNSET": "#9a9a9a"}


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def read_spans(path: Path, trace_id: str = "") -> List[Dict[str, Any]]:
    """The spans of one trace (the first in the file unless ``trace_id`` names one)."""
    spans = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    wanted = trace_id or (spans[0]["context"]["trace_id"] if spans else "")
    return [span for span in spans if span["context"]["trace_id"].removeprefix("0x") == wanted.removeprefix("0x")]


def ordered(spans: List[Dict[str, Any]]) -> List[tuple[int, Dict[str, Any]]]:
    """Depth-first: each span after its parent, siblings by start time; (depth, span)."""
    ids = {span["context"]["span_id"] for span in spans}
    children: Dict[str, List[Dict[str, Any]]] = {}
    for span in spans:
        parent = span["parent_id"] if span["parent_id"] in ids else ""
        children.setdefault(parent or "", []).append(span)
    rows: List[tuple[int, Dict[str, Any]]] = []

    def walk(parent: str, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda found: found["start_time"]):
            rows.append((depth, span))
            walk(span["context"]["span_id"], depth + 1)

    walk("", 0)
    return rows


def render(spans: List[Dict[str, Any]]) -> str:
    rows = ordered(spans)
    start = min(_seconds(span["start_time"]) for span in spans)
    end = max(_seconds(span["end_time"]) for span in spans)
    scale = WIDTH / max(end - start, 1e-6)
    height = PAD * 2 + ROW * (len(rows) + 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{LABEL + WIDTH + PAD * 3}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{PAD}" y="{PAD + 12}" font-weight="bold">trace {escape(spans[0]["context"]["trace_id"])} '
        f"({len(spans)} spans, {end - start:.2f} s)</text>",
    ]
    for index, (depth, span) in enumerate(rows, start=1):
        y = PAD + index * ROW
        left = LABEL + PAD * 2 + (_seconds(span["start_time"]) - start) * scale
        length = max((_seconds(span["end_time"]) - _seconds(span["start_time"])) * scale, 1.5)
        colour = COLOURS.get(span["status"]["status_code"], COLOURS["UNSET"])
        label = escape(span["name"])
        took = (_seconds(span["end_time"]) - _seconds(span["start_time"])) * 1000
        parts.append(f'<text x="{PAD + depth * 14}" y="{y + 14}">{label}</text>')
        parts.append(
            f'<rect x="{left:.1f}" y="{y + 3}" width="{length:.1f}" height="{ROW - 8}" fill="{colour}" rx="2">'
        )
        parts.append(f"<title>{label}: {took:.1f} ms {escape(json.dumps(span['attributes']))}</title></rect>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main(argv: List[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: python scripts/render_trace.py SPANS.jsonl OUTPUT.svg [TRACE_ID]", file=sys.stderr)
        return 2
    spans = read_spans(Path(argv[0]), argv[2] if len(argv) == 3 else "")
    if not spans:
        print(f"{argv[0]}: no span of that trace", file=sys.stderr)
        return 1
    Path(argv[1]).write_text(render(spans))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
