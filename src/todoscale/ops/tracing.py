"""Opt-in OpenTelemetry tracing: on only when TODOSCALE_OTEL_ENDPOINT is set.

Flask, SQLAlchemy and Redis are instrumented in the app factory, which every server runs
in each worker after the fork (a span processor's thread created before a fork would not
survive it); Celery is instrumented in each pool process (`worker_process_init`). Traces
are sampled (TODOSCALE_OTEL_SAMPLE_RATIO, parent-based: a traced caller stays traced) and
exported by OTLP over HTTP in batches. The request id rides along: it is an attribute of
the request's span, goes into the headers of the jobs the request enqueues and onto their
spans in the worker, and onto the span of every live-update event the request emits.
Off, this module costs nothing: no SDK object exists and `event_span` is a null context.

Each app has its own tracer provider, and only what is the app's is instrumented with it:
its Flask app and its engine. What the instrumentations patch process-wide (the Redis
client, Celery) is instrumented once per process with a provider that hands each span to
the current app's provider. So a second app in the same process (tests, a CLI command)
neither re-instruments (opentelemetry logs "already instrumented") nor sends its spans to
the first app's provider, which may be shut down by then ("Processor is already shutdown").
The providers are shut down once, by one exit handler, after which nothing is routed to
them.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from flask import Flask, current_app, g, has_app_context, has_request_context

EXTENSION = "todoscale.tracing"
REQUEST_ID_ATTRIBUTE = "todoscale.request_id"
REQUEST_ID_HEADER = "todoscale_request_id"

# Every provider made in this process (the last is the default outside an app context),
# and whether the exit handler has shut them down.
_providers: list[Any] = []
_state = {"exiting": False, "global": False}
_lock = threading.Lock()


def _shutdown_all() -> None:
    """At exit: route nothing more, then shut each provider down, once."""
    with _lock:
        _state["exiting"] = True
        providers = list(_providers)
    for provider in providers:
        provider.shutdown()


def _current_provider() -> Any | None:
    """The provider spans of process-wide instrumentations go to: the current app's, else
    the last one made; none once the process is exiting."""
    if _state["exiting"]:
        return None
    if has_app_context():
        return current_app.extensions.get(EXTENSION)
    return _providers[-1] if _providers else None


def _routing() -> Any:
    """A tracer provider for process-wide instrumentations (see the module's docstring):
    each span from the current app's provider. Defined here: the SDK loads only when on."""
    from opentelemetry import trace

    class RoutingTracer(trace.Tracer):
        def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            self._args, self._kwargs = args, kwargs

        def _tracer(self) -> trace.Tracer:
            provider = _current_provider()
            if provider is None:
                return trace.NoOpTracer()
            tracer: trace.Tracer = provider.get_tracer(*self._args, **self._kwargs)
            return tracer

        def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
            """A span of the current app's provider."""
            return self._tracer().start_span(*args, **kwargs)

        def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
            """A current span of the current app's provider."""
            return self._tracer().start_as_current_span(*args, **kwargs)

    class Routing(trace.TracerProvider):
        def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
            """A tracer that picks the provider at each span."""
            return RoutingTracer(args, kwargs)

    return Routing()


def _provider(app: Flask) -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    sampler = ParentBased(TraceIdRatioBased(float(app.config["OTEL_SAMPLE_RATIO"])))
    provider = TracerProvider(
        sampler=sampler,
        resource=Resource.create({"service.name": "todoscale"}),
        shutdown_on_exit=False,  # by _shutdown_all, once, after routing stops
    )
    exporter = app.config.get("OTEL_EXPORTER")  # tests hand an in-memory exporter
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=app.config["OTEL_ENDPOINT"]))
        )
    return provider


def _tag_request(response: Any) -> Any:
    from opentelemetry import trace

    trace.get_current_span().set_attribute(REQUEST_ID_ATTRIBUTE, g.get("request_id") or "")
    return response


def init_app(app: Flask) -> None:
    """Instrument the app when TODOSCALE_OTEL_ENDPOINT is set; do nothing otherwise."""
    if not app.config["OTEL_ENDPOINT"]:
        return
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    provider = _provider(app)
    app.extensions[EXTENSION] = provider
    FlaskInstrumentor().instrument_app(app, tracer_provider=provider)
    _trace_engine(app, provider)
    app.after_request(_tag_request)
    with _lock:
        if not _providers:
            atexit.register(_shutdown_all)
        _providers.append(provider)
        first = not _state["global"]
        _state["global"] = True
    if first:
        _instrument_process()


def _trace_engine(app: Flask, provider: Any) -> None:
    """Spans for the SQL of this app's engine only, from this app's provider.

    SQLAlchemyInstrumentor would also patch `create_engine` and `Engine.connect` for the
    whole process, bound to the first provider, and ignore every later app's engine; its
    per-engine part (`EngineTracer`) is what it runs for an engine it is given.
    """
    from opentelemetry.instrumentation.sqlalchemy import __version__
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import NoOpMeter
    from opentelemetry.semconv.metrics import MetricInstruments

    from todoscale.extensions import db

    tracer = provider.get_tracer("opentelemetry.instrumentation.sqlalchemy", __version__)
    usage = NoOpMeter("todoscale").create_up_down_counter(
        MetricInstruments.DB_CLIENT_CONNECTIONS_USAGE
    )
    with app.app_context():
        EngineTracer(tracer, db.engine, usage)


def _instrument_process() -> None:
    """Once per process: Redis clients, and Celery in each pool process, with the routing
    provider; the request id handed from a request to its jobs."""
    from celery.signals import before_task_publish, task_prerun, worker_process_init
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    RedisInstrumentor().instrument(tracer_provider=_routing())
    worker_process_init.connect(_instrument_worker, weak=False)
    before_task_publish.connect(_stamp_job, weak=False)
    task_prerun.connect(_tag_job, weak=False)


def _instrument_worker(**_: Any) -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    CeleryInstrumentor().instrument(tracer_provider=_routing())


def _stamp_job(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Before a job is published from a request: carry the request id in its headers."""
    if headers is not None and has_request_context() and g.get("request_id"):
        headers[REQUEST_ID_HEADER] = g.request_id


def _tag_job(task: Any = None, **_: Any) -> None:
    """In the worker: put the request id that queued the job on the job's span."""
    from opentelemetry import trace

    request_id = getattr(task.request, REQUEST_ID_HEADER, None) if task is not None else None
    if request_id:
        trace.get_current_span().set_attribute(REQUEST_ID_ATTRIBUTE, request_id)


@contextlib.contextmanager
def event_span(event: str) -> Iterator[None]:
    """A span around emitting one live-update event, when tracing is on."""
    provider = current_app.extensions.get(EXTENSION) if has_app_context() else None
    if provider is None:
        yield
        return
    tracer = provider.get_tracer("todoscale.realtime")
    with tracer.start_as_current_span(f"socketio.emit {event}") as span:
        if has_request_context():
            span.set_attribute(REQUEST_ID_ATTRIBUTE, g.get("request_id") or "")
        yield
