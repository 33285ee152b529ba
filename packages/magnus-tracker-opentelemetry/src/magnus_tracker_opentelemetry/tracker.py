"""``experiment_tracker: {type: opentelemetry, config: {exporter, endpoint, path, service}}``.

Every magnus run is one OpenTelemetry trace, exported over OTLP/HTTP (protobuf) to a collector or
written to a file of JSON lines:

- a span per run (``magnus run``), per step (``step <name>``), per attempt of a step
  (``attempt <n>``), per composite step (``step <name>``: a parallel, map or dag step) and per
  branch of one (``branch <name>``, one per map item), nested as the pipeline is;
- attributes ``magnus.run_id``, ``magnus.step``, ``magnus.status``, ``magnus.map_values`` (JSON),
  ``magnus.executor``, ``magnus.attempt``, ``magnus.error`` (a failure's message, also the span's
  error status); the run's span also has its tag and parameters (``magnus.parameter.<name>``);
- what ``track_this`` tracks: events ``magnus.metric`` (``metric``, ``value``, ``step``) and
  ``magnus.parameter`` (``parameter``, ``value``) on the step's span (the run's between steps).

One run is one trace across processes: a unit launched elsewhere (a worker process, a container, a
SLURM job) receives the context of the span it belongs under in its environment, ``MAGNUS_TRACEPARENT``
(W3C ``traceparent``), through the launch request ([`launch_environment`][]); a run started with
``TRACEPARENT`` in its environment joins that trace. Where no context can be handed over (engines
that render the whole pipeline before it runs: Argo's pods, an Azure ML job's nodes), every process
derives the run's trace from its run id: the trace id and the run span's id are digests of it
(:func:`run_span_context`), so the spans of every pod fall under the one run span.

Why the tracker namespace: the entry-point namespaces of magnus are exactly magnus 0.5.1's; the
tracker's hooks are called in every process of a run, at the run, each step and attempt, and each
composite and branch; and ``experiment_tracker:`` takes a list, so tracing goes along with MLflow,
W&B or TensorBoard. Off unless configured (the default tracker is do-nothing), and nothing of
OpenTelemetry is imported unless it is configured.

Secret values reach this tracker masked (``***``): run parameters, tracked values and failure
messages pass through the run's masking first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from typing import TYPE_CHECKING, Any, ClassVar, Dict, Iterator, List, Literal, Optional, Sequence, Tuple, cast

from pydantic import Field, PrivateAttr, model_validator

from magnus import defaults
from magnus.tracker import BaseExperimentTracker, MapVariable

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.id_generator import IdGenerator
    from opentelemetry.trace import Span, SpanContext, Tracer

# The context of the span a launched unit belongs under, as a W3C traceparent.
TRACEPARENT_VARIABLE = "MAGNUS_TRACEPARENT"
# The standard variable: a run started with it joins the trace it names.
OUTER_TRACEPARENT_VARIABLE = "TRACEPARENT"
RUN_SPAN = "magnus run"


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


class OpenTelemetryTracker(BaseExperimentTracker):
    """Traces every run: spans per run, step, attempt, composite and branch, exported over OTLP or to a file."""

    service_name: ClassVar[str] = "opentelemetry"

    exporter: Literal["otlp-http", "file"] = Field(default="otlp-http", description="Where spans go.")
    endpoint: str = Field(
        default="http://127.0.0.1:4318/v1/traces", description="OTLP/HTTP traces endpoint (exporter otlp-http)."
    )
    path: str = Field(default="", description="File of JSON lines, one span each (exporter file).")
    headers: Dict[str, str] = Field(default_factory=dict, description="HTTP headers of OTLP requests.")
    timeout: float = Field(default=10.0, gt=0, description="Seconds an export may take.")
    service: str = Field(default="magnus", description="The traces' service.name.")

    _provider: Optional["TracerProvider"] = PrivateAttr(default=None)
    _pid: int = PrivateAttr(default=0)
    _executor: str = PrivateAttr(default="")
    _run_id: str = PrivateAttr(default="")
    _run_span: Optional["Span"] = PrivateAttr(default=None)
    # Spans open in this process by the name of what they are about (steps, composites, branches).
    _open: Dict[str, "Span"] = PrivateAttr(default_factory=dict)
    _attempts: Dict[str, "Span"] = PrivateAttr(default_factory=dict)
    _step: str = PrivateAttr(default="")
    _extra: List["SpanExporter"] = PrivateAttr(default_factory=list)
    _ids: Optional["_RunIds"] = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _file_has_a_path(self) -> "OpenTelemetryTracker":
        if self.exporter == "file" and not self.path:
            raise ValueError("exporter 'file' needs a path (the file of JSON lines the spans are written to)")
        return self

    def local_paths(self) -> List[str]:
        return [os.path.dirname(os.path.abspath(self.path))] if self.exporter == "file" else []

    def state_paths(self) -> List[str]:
        return [self.path] if self.exporter == "file" else []

    def get_summary(self) -> Dict[str, Any]:
        """The configuration without header values (they may hold a token)."""
        summary = super().get_summary()
        summary["headers"] = sorted(self.headers)
        return summary

    def add_exporter(self, exporter: "SpanExporter") -> None:
        """Send spans to ``exporter`` too (an in-memory exporter in tests; any other backend)."""
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        self._extra.append(exporter)
        if self._provider is not None:
            self._provider.add_span_processor(SimpleSpanProcessor(exporter))

    # ---- the run ----------------------------------------------------------------------------------
    def describe_run(self, executor: str) -> None:
        self._executor = executor

    def start_run(self, run_id: str, tag: str = "", parameters: Optional[Dict[str, Any]] = None) -> None:
        """Open the run's span (under ``TRACEPARENT``'s span when the environment names one)."""
        self._attach(run_id)
        attributes = {f"magnus.parameter.{key}": _json(value) for key, value in (parameters or {}).items()}
        attributes.update({"magnus.run_id": run_id, "magnus.tag": tag, "magnus.executor": self._executor})
        parent = _context_from(os.environ.get(OUTER_TRACEPARENT_VARIABLE, ""))
        tracer = self._tracer()
        if parent is None:  # the run's own trace: its ids derived from the run id, as every process derives them
            assert self._ids is not None
            with self._ids.deriving(run_id):
                self._run_span = tracer.start_span(RUN_SPAN, attributes=attributes)
            return
        self._run_span = tracer.start_span(RUN_SPAN, context=parent, attributes=attributes)

    def end_run(self, status: str) -> None:
        """End every span still open here, the run's last, with the run's status; export them."""
        for name in list(self._attempts):
            self._end(self._attempts.pop(name), status)
        for name in sorted(self._open, key=len, reverse=True):  # inner ones first
            self._end(self._open.pop(name), "")
        if self._run_span is not None:
            self._end(self._run_span, status)
            self._run_span = None
        self._flush()

    # ---- steps and attempts -----------------------------------------------------------------------
    def start_step(self, run_id: str, tag: str, step: str) -> None:
        self._attach(run_id)
        self._step = step
        self._open[step] = self._tracer().start_span(
            f"step {step}", context=self._parent_of(step), attributes=self._attributes(step)
        )

    def end_step(self, step: str, status: str) -> None:
        span = self._open.pop(step, None)
        if span is not None:
            self._end(span, status)
        if self._step == step:
            self._step = ""
        self._flush()  # a worker leaves without running exit handlers

    def start_attempt(self, step: str, attempt: int, map_variable: MapVariable = None) -> None:
        step_span = self._open.get(step)
        if step_span is None:
            return
        if map_variable:
            step_span.set_attribute("magnus.map_values", _json(map_variable))
        from opentelemetry import trace

        attributes = {**self._attributes(step), "magnus.attempt": attempt}
        if map_variable:
            attributes["magnus.map_values"] = _json(map_variable)
        context = trace.set_span_in_context(step_span)
        self._attempts[step] = self._tracer().start_span(f"attempt {attempt}", context=context, attributes=attributes)

    def end_attempt(self, step: str, attempt: int, status: str, message: str = "") -> None:
        span = self._attempts.pop(step, None)
        if span is not None:
            self._end(span, status, message)
        step_span = self._open.get(step)
        if step_span is not None:
            step_span.set_attribute("magnus.attempt", attempt)
            if status != defaults.SUCCESS and message:
                step_span.set_attribute("magnus.error", message)

    # ---- composites and branches ------------------------------------------------------------------
    def start_composite(self, step: str, branches: Sequence[Tuple[str, MapVariable]]) -> None:
        from opentelemetry import trace

        tracer = self._tracer()
        composite = tracer.start_span(f"step {step}", context=self._parent_of(step), attributes=self._attributes(step))
        self._open[step] = composite
        inside = trace.set_span_in_context(composite)
        for branch, map_variable in branches:
            attributes: Dict[str, Any] = {**self._attributes(step), "magnus.branch": branch}
            if map_variable:
                attributes["magnus.map_values"] = _json(map_variable)
            self._open[branch] = tracer.start_span(f"branch {branch}", context=inside, attributes=attributes)

    def end_branch(self, branch: str, status: str) -> None:
        span = self._open.pop(branch, None)
        if span is not None:
            self._end(span, status)

    def end_composite(self, step: str, status: str, message: str = "") -> None:
        """End the composite's span, and those of its branches that ended elsewhere (their status unknown here)."""
        for name in [name for name in self._open if name.startswith(step + ".")]:
            self._end(self._open.pop(name), status if status == defaults.SUCCESS else "")
        span = self._open.pop(step, None)
        if span is not None:
            self._end(span, status, message)
        self._flush()

    def launch_environment(self, unit: str) -> Dict[str, str]:
        """``MAGNUS_TRACEPARENT``: the span ``unit`` belongs under (itself, for a branch opened here)."""
        from opentelemetry import trace

        span = self._open.get(unit)
        context = trace.set_span_in_context(span) if span is not None else self._parent_of(unit)
        carrier: Dict[str, str] = {}
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        TraceContextTextMapPropagator().inject(carrier, context=context)
        return {TRACEPARENT_VARIABLE: carrier["traceparent"]} if "traceparent" in carrier else {}

    # ---- what tasks track -------------------------------------------------------------------------
    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        span = self._current()
        if span is not None:
            span.add_event("magnus.metric", {"metric": key, "value": float(value), "step": step})

    def log_parameter(self, key: str, value: Any) -> None:
        span = self._current()
        if span is not None:
            text = value if isinstance(value, str) else _json(value)
            span.add_event("magnus.parameter", {"parameter": key, "value": text})

    # ---- spans ------------------------------------------------------------------------------------
    def _attach(self, run_id: str) -> None:
        """Trace ``run_id`` from now on; a forked process drops the spans its parent holds open."""
        if self._pid != os.getpid():
            if self._pid:  # forked: the parent ends its own spans; this process's parents come by MAGNUS_TRACEPARENT
                self._open, self._attempts, self._run_span = {}, {}, None
            self._pid = os.getpid()
        self._run_id = run_id

    def _current(self) -> Optional["Span"]:
        return self._open.get(self._step) if self._step else self._run_span

    def _attributes(self, name: str) -> Dict[str, Any]:
        return {"magnus.run_id": self._run_id, "magnus.step": name, "magnus.executor": self._executor}

    def _parent_of(self, name: str) -> Optional["Context"]:
        """The context a span of ``name`` starts under: the innermost composite or branch open here
        holding it, else the one its launch named (``MAGNUS_TRACEPARENT``), else the run's span."""
        from opentelemetry import trace

        holders = [open_name for open_name in self._open if name.startswith(open_name + ".")]
        if holders:
            return trace.set_span_in_context(self._open[max(holders, key=len)])
        launched = _context_from(os.environ.get(TRACEPARENT_VARIABLE, ""))
        if launched is not None:
            return launched
        if self._run_span is not None:
            return trace.set_span_in_context(self._run_span)
        if self._run_id and not os.environ.get(OUTER_TRACEPARENT_VARIABLE):  # a pod of an engine rendering ahead
            return trace.set_span_in_context(trace.NonRecordingSpan(run_span_context(self._run_id)))
        return None

    def _end(self, span: "Span", status: str, message: str = "") -> None:
        from opentelemetry.trace import Status, StatusCode

        if status:
            span.set_attribute("magnus.status", status)
        if status and status != defaults.SUCCESS:
            if message:
                span.set_attribute("magnus.error", message)
            span.set_status(Status(StatusCode.ERROR, message or status))
        elif status == defaults.SUCCESS:
            span.set_status(Status(StatusCode.OK))
        span.end()

    def _tracer(self) -> "Tracer":
        if self._provider is None:
            self._provider = self._make_provider()
        return self._provider.get_tracer("magnus")

    def _make_provider(self) -> "TracerProvider":
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        self._ids = _RunIds()
        resource = Resource.create({"service.name": self.service})
        provider = TracerProvider(resource=resource, id_generator=cast("IdGenerator", self._ids))  # duck-typed: lazy
        if self.exporter == "file":
            from magnus_tracker_opentelemetry.files import JsonLinesSpanExporter

            provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(self.path)))
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=self.endpoint, headers=self.headers, timeout=self.timeout)
            provider.add_span_processor(BatchSpanProcessor(exporter))
        for extra in self._extra:
            provider.add_span_processor(SimpleSpanProcessor(extra))
        return provider

    def _flush(self) -> None:
        if self._provider is not None:
            self._provider.force_flush(int(self.timeout * 1000))


def _context_from(traceparent: str) -> Optional["Context"]:
    """The context a W3C ``traceparent`` names (None for '' or one that does not parse)."""
    if not traceparent:
        return None
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    context = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def _digest(text: str, bits: int) -> int:
    """A non-zero number of ``bits`` bits from ``text``: the same in every process."""
    value = int.from_bytes(hashlib.sha256(text.encode()).digest()[: bits // 8], "big")
    return value or 1


def run_span_context(run_id: str) -> "SpanContext":
    """The span context of run ``run_id``'s span: its trace id and span id are digests of the run id,
    so a process that was handed no context (a pod of a rendered workflow) finds it."""
    from opentelemetry.trace import SpanContext, TraceFlags

    return SpanContext(
        trace_id=_digest(f"magnus-trace:{run_id}", 128),
        span_id=_digest(f"magnus-run-span:{run_id}", 64),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )


class _RunIds:
    """The SDK's id generator, except for a run's span: its ids are the run's ([`run_span_context`][])."""

    def __init__(self) -> None:
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

        self._random = RandomIdGenerator()
        self._run: Optional["SpanContext"] = None

    @contextlib.contextmanager
    def deriving(self, run_id: str) -> Iterator[None]:
        """Within the block, the next span started without a parent gets the ids of ``run_id``'s span."""
        self._run = run_span_context(run_id)
        try:
            yield
        finally:
            self._run = None

    def generate_trace_id(self) -> int:
        return self._run.trace_id if self._run is not None else self._random.generate_trace_id()

    def generate_span_id(self) -> int:
        return self._run.span_id if self._run is not None else self._random.generate_span_id()

    def is_trace_id_random(self) -> bool:
        """W3C's random flag: a run's trace id is a digest, not drawn at random."""
        return False
