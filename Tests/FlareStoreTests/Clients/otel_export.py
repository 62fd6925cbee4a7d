#!/usr/bin/env python3
"""Exports a small trace to a Flare store with the real OpenTelemetry Python
SDK and its OTLP/HTTP protobuf exporter, then prints the spans it sent (ids,
names, times, parents) as JSON for the test to compare with the store's answer."""
import json
import sys
import time

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

endpoint = sys.argv[1]
token = sys.argv[2] if len(sys.argv) > 2 else None

memory = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "otel-checkout", "service.version": "2.1"}))
provider.add_span_processor(SimpleSpanProcessor(memory))
tracer = provider.get_tracer("flare-store-test")

with tracer.start_as_current_span("GET /checkout", kind=SpanKind.SERVER) as root:
    root.set_attribute("http.route", "/checkout")
    with tracer.start_as_current_span("db.query") as child:
        child.set_attribute("db.system", "postgresql")
        with tracer.start_as_current_span("db.fetch <rows>"):
            time.sleep(0.005)
    with tracer.start_as_current_span("render"):
        time.sleep(0.002)

spans = memory.get_finished_spans()
headers = {"Authorization": f"Bearer {token}"} if token else None
exporter = OTLPSpanExporter(endpoint=endpoint + "/v1/traces", headers=headers)
result = exporter.export(spans)
if result != SpanExportResult.SUCCESS:
    print(f"export failed: {result}", file=sys.stderr)
    sys.exit(1)

print(json.dumps([{
    "name": s.name,
    "trace_id": format(s.context.trace_id, "032x"),
    "span_id": format(s.context.span_id, "016x"),
    "parent_span_id": format(s.parent.span_id, "016x") if s.parent else "",
    "start_ns": s.start_time,
    "end_ns": s.end_time,
    "kind": s.kind.value,
} for s in spans]))
