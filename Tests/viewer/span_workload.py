#!/usr/bin/env python3
"""A traced service for the trace-jump test: the real OpenTelemetry SDK sends
its spans over OTLP/HTTP to the store, and clients/python's integration
publishes each span to the FLARE_SLOTS ring so `flare record` labels samples.

    span_workload.py STORE_URL

One trace, "checkout", with a quick step burning zlib, a deliberately slow
step burning SHA-256 with a child "db-query" sorting lists. Prints the span
ids as one JSON line when done."""

import hashlib
import json
import os
import sys
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))

from opentelemetry import trace  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402

import flare_otel  # noqa: E402

store = sys.argv[1]
provider = TracerProvider(resource=Resource.create({"service.name": "shop", "service.version": "1.0"}))
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=store + "/v1/traces")))
trace.set_tracer_provider(provider)
flare_otel.install(provider)
tracer = trace.get_tracer("flare-viewer-test")


def cpu_seconds():
    return time.thread_time()


def compress_for(seconds):
    data = os.urandom(1 << 16)
    end = cpu_seconds() + seconds
    while cpu_seconds() < end:
        zlib.compress(data, 9)


def hash_for(seconds):
    data = os.urandom(1 << 20)
    end = cpu_seconds() + seconds
    while cpu_seconds() < end:
        hashlib.sha256(data).digest()


def sort_for(seconds):
    values = [((i * 7919) % 100003) / 3.0 for i in range(50000)]
    end = cpu_seconds() + seconds
    while cpu_seconds() < end:
        sorted(values, reverse=True)


ids = {}


def remember(name, span):
    context = span.get_span_context()
    ids[name] = f"{context.span_id:016x}"
    ids["trace_id"] = f"{context.trace_id:032x}"


with tracer.start_as_current_span("checkout") as root:
    remember("checkout", root)
    with tracer.start_as_current_span("quick-step") as quick:
        remember("quick-step", quick)
        compress_for(0.4)
    with tracer.start_as_current_span("slow-step") as slow:
        remember("slow-step", slow)
        hash_for(1.5)
        with tracer.start_as_current_span("db-query") as query:
            remember("db-query", query)
            sort_for(0.6)

provider.force_flush()
provider.shutdown()
print(json.dumps(ids), flush=True)
