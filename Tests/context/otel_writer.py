#!/usr/bin/env python3
"""An application instrumented with the real OpenTelemetry SDK, for the tests.

    otel_writer.py install OTLP_URL     flare_otel.install() after SDK setup
    otel_writer.py entrypoint OTLP_URL  no Flare code: OTEL_PYTHON_CONTEXT=flare
                                        selects FlareRuntimeContext through the
                                        installed package's entry point

Spans are exported over OTLP/HTTP to OTLP_URL, so the test can check that the
ids published in the slot are the ids the SDK really produced. Same line
protocol as writer.c: CHECK lines carry what the SDK says is current, then the
writer waits for the test to read the slot from outside.
"""

import json
import os
import sys
import threading

mode = sys.argv[1]
otlp_url = sys.argv[2]

if mode == "install":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))

from opentelemetry import context, trace  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator  # noqa: E402


def emit(kind, obj=None):
    line = kind if obj is None else f"{kind} {json.dumps(obj)}"
    os.write(1, (line + "\n").encode())


def wait_go():
    if not sys.stdin.readline():
        sys.exit(3)


def ids(span):
    sc = span.get_span_context()
    return {"trace_id": f"{sc.trace_id:032x}", "span_id": f"{sc.span_id:016x}", "trace_flags": int(sc.trace_flags)}


def check(step, tid=None, **extra):
    emit("CHECK", dict(extra, name=step, tid=tid or threading.get_native_id()))
    wait_go()


provider = TracerProvider(
    resource=Resource.create(
        {"service.name": "shop", "service.version": "9.9", "deployment.environment.name": "staging"}
    )
)
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=otlp_url)))
trace.set_tracer_provider(provider)

if mode == "install":
    import flare_otel

    flare_otel.install()

tracer = trace.get_tracer("flare.test")
emit(
    "READY",
    {
        "pid": os.getpid(),
        "tid": threading.get_native_id(),
        "runtime_context": type(context._RUNTIME_CONTEXT).__name__,
    },
)

with tracer.start_as_current_span("checkout-request") as root:
    check("root", **ids(root), root_id=ids(root)["span_id"], root_name="checkout-request")
    with tracer.start_as_current_span("db-query") as child:
        check("child", **ids(child), root_id=ids(root)["span_id"], root_name="checkout-request")
    check("back-to-root", **ids(root), root_id=ids(root)["span_id"], root_name="checkout-request")
check("no-span")

# A remote parent alone is not local work; the first local span under it is
# this process's local root.
remote = TraceContextTextMapPropagator().extract(
    {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
)
token = context.attach(remote)
check("remote-parent-only")
with tracer.start_as_current_span("handle-rpc") as handler:
    check("remote-child", **ids(handler), root_id=ids(handler)["span_id"], root_name="handle-rpc")
context.detach(token)

# A span made current on a worker thread; the thread's slot goes when it ends.
worker = {}
proceed = threading.Event()
reported = threading.Event()


def work():
    with tracer.start_as_current_span("worker-job") as job:
        worker.update(ids(job), tid=threading.get_native_id())
        reported.set()
        proceed.wait()


t = threading.Thread(target=work)
t.start()
reported.wait()
check("worker", tid=worker["tid"], trace_id=worker["trace_id"], span_id=worker["span_id"],
      trace_flags=worker["trace_flags"], root_id=worker["span_id"], root_name="worker-job")
proceed.set()
t.join()
check("worker-exited", worker_tid=worker["tid"])

# The parent never becomes current here; only the span processor sees it
# start, so only install() (which adds the processor) knows the root.
background = tracer.start_span("background-root")
with tracer.start_as_current_span("batch-item", context=trace.set_span_in_context(background)) as item:
    check("explicit-parent", **ids(item), root_id=ids(background)["span_id"], root_name="background-root")
background.end()

provider.force_flush()
check("exported")
emit("DONE")
