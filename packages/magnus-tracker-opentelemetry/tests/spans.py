"""Spans as the tests read them back: from the file exporter's JSON lines, or from OTLP protobuf
requests a real HTTP receiver on 127.0.0.1 took in (decoded with opentelemetry-proto)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


@dataclass
class SpanRecord:
    name: str
    trace_id: str
    span_id: str
    parent_id: Optional[str]
    attributes: Dict[str, Any]
    events: List[Dict[str, Any]] = field(default_factory=list)
    error: bool = False


def from_file(path: Path) -> List[SpanRecord]:
    spans = []
    for line in path.read_text().splitlines():
        found = json.loads(line)
        spans.append(
            SpanRecord(
                name=found["name"],
                trace_id=found["context"]["trace_id"].removeprefix("0x"),
                span_id=found["context"]["span_id"].removeprefix("0x"),
                parent_id=(found["parent_id"] or "").removeprefix("0x") or None,
                attributes=found["attributes"],
                events=[
                    {"name": event["name"], "timestamp": event["timestamp"], **event["attributes"]}
                    for event in found["events"]
                ],
                error=found["status"]["status_code"] == "ERROR",
            )
        )
    return spans


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def from_otlp(bodies: List[bytes]) -> List[SpanRecord]:
    spans = []
    for body in bodies:
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    spans.append(
                        SpanRecord(
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex() or None,
                            attributes={item.key: _value(item.value) for item in span.attributes},
                            events=[
                                {
                                    "name": event.name,
                                    "timestamp": event.time_unix_nano,
                                    **{item.key: _value(item.value) for item in event.attributes},
                                }
                                for event in span.events
                            ],
                            error=span.status.code == 2,
                        )
                    )
    return spans


class Receiver:
    """An OTLP/HTTP traces endpoint on 127.0.0.1: keeps each request's protobuf body."""

    def __init__(self) -> None:
        self.bodies: List[bytes] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                assert self.headers["Content-Type"] == "application/x-protobuf"
                received.append(self.rfile.read(length))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def receiver() -> Iterator[Receiver]:
    started = Receiver()
    try:
        yield started
    finally:
        started.close()


def by_name(spans: List[SpanRecord]) -> Dict[str, SpanRecord]:
    named = {span.name: span for span in spans}
    assert len(named) == len(spans), sorted(span.name for span in spans)
    return named
