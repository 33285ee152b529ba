"""Spans as JSON lines in a file: one line per span, in OpenTelemetry's own JSON of a span.

Every process of a run appends to the same file (a worker, a container on a shared folder): each
batch of spans is written with one ``write`` to a file opened for appending, so lines of several
processes do not interleave within a line on a local file system.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Sequence

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan


class JsonLinesSpanExporter(SpanExporter):
    """Appends each span to ``path`` as one line of JSON (``ReadableSpan.to_json``, on one line)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, spans: Sequence["ReadableSpan"]) -> SpanExportResult:
        lines = "".join(json.dumps(json.loads(span.to_json())) + "\n" for span in spans)
        folder = os.path.dirname(self.path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(lines)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing is held open between exports."""
