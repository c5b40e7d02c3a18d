"""Opt-in OpenTelemetry tracing: on only when TODOSCALE_OTEL_ENDPOINT is set.

Flask, SQLAlchemy and Redis are instrumented in the app factory, which every server runs
in each worker after the fork (a span processor's thread created before a fork would not
survive it); Celery is instrumented in each pool process (`worker_process_init`). Traces
are sampled (TODOSCALE_OTEL_SAMPLE_RATIO, parent-based: a traced caller stays traced) and
exported by OTLP over HTTP in batches. The request id rides along: it is an attribute of
the request's span, goes into the headers of the jobs the request enqueues and onto their
spans in the worker, and onto the span of every live-update event the request emits.
Off, this module costs nothing: no SDK object exists and `event_span` is a null context.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from flask import Flask, current_app, g, has_app_context, has_request_context

EXTENSION = "todoscale.tracing"
REQUEST_ID_ATTRIBUTE = "todoscale.request_id"
REQUEST_ID_HEADER = "todoscale_request_id"


def _provider(app: Flask) -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    sampler = ParentBased(TraceIdRatioBased(float(app.config["OTEL_SAMPLE_RATIO"])))
    provider = TracerProvider(
        sampler=sampler, resource=Resource.create({"service.name": "todoscale"})
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
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    from todoscale.extensions import db

    provider = _provider(app)
    app.extensions[EXTENSION] = provider
    FlaskInstrumentor().instrument_app(app, tracer_provider=provider)
    with app.app_context():
        SQLAlchemyInstrumentor().instrument(engine=db.engine, tracer_provider=provider)
    redis = RedisInstrumentor()
    if not redis.is_instrumented_by_opentelemetry:
        redis.instrument(tracer_provider=provider)
    app.after_request(_tag_request)
    _connect_celery(app)


def _connect_celery(app: Flask) -> None:
    from celery.signals import before_task_publish, task_prerun, worker_process_init

    def instrument_worker(**_: Any) -> None:
        from opentelemetry.instrumentation.celery import CeleryInstrumentor

        CeleryInstrumentor().instrument(tracer_provider=app.extensions[EXTENSION])

    worker_process_init.connect(instrument_worker, weak=False)
    before_task_publish.connect(_stamp_job, weak=False)
    task_prerun.connect(_tag_job, weak=False)


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
