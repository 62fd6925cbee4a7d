"""OpenTelemetry Python integration for the Flare span-context ABI.

Every time the OpenTelemetry API attaches or detaches a context on a thread,
the span that becomes current there is published to the thread's FLARE_SLOTS
ring (see flare_context), so the Flare profiler can label CPU samples with the
span, trace and local root span that were running.

Two ways to turn it on:

* In code, after configuring the SDK::

      import flare_otel
      flare_otel.install()          # or install(tracer_provider)

  This wraps the runtime context already in use, adds a span processor that
  remembers each span's local root, and publishes the SDK resource
  (service.name, service.version, deployment.environment.name) as the
  OpenTelemetry process context.

* Without code changes, with this package installed: set
  ``OTEL_PYTHON_CONTEXT=flare``. The API then loads FlareRuntimeContext
  through the ``opentelemetry_context`` entry point.

Limitation: asyncio tasks switch on a thread without attaching or detaching
a context, so while several tasks interleave, the slot shows the span of the
last attach/detach on that thread.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext

try:
    from opentelemetry.context.context import _RuntimeContext as _RuntimeContextBase
except ImportError:  # opentelemetry-api before 1.27 named it without the underscore
    from opentelemetry.context.context import RuntimeContext as _RuntimeContextBase

import flare_context

__all__ = ["FlareRuntimeContext", "FlareSpanProcessor", "install", "publish_resource_of"]

# opentelemetry.trace is imported lazily: this module is also loaded by the
# entry point while opentelemetry.context is still initializing, and the trace
# package imports from that half-built module.
_trace = None


def _trace_api():
    global _trace
    if _trace is None:
        from opentelemetry import trace

        _trace = trace
    return _trace


class _RootTable:
    """span_id -> (local root span_id, local root name), bounded.

    The API's Span does not point at its parent span object, only at the
    parent's ids, so the local root is carried forward from span to span.
    """

    def __init__(self, capacity: int = 16384) -> None:
        self._roots: OrderedDict[int, tuple[int, str]] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def get(self, span_id: int) -> tuple[int, str] | None:
        with self._lock:
            return self._roots.get(span_id)

    def remember(self, span_id: int, root: tuple[int, str]) -> None:
        with self._lock:
            self._roots[span_id] = root
            self._roots.move_to_end(span_id)
            if len(self._roots) > self._capacity:
                self._roots.popitem(last=False)

    def forget(self, span_id: int) -> None:
        with self._lock:
            self._roots.pop(span_id, None)


_roots = _RootTable()
_UNKNOWN_ROOT = (0, "")


class _ThreadState(threading.local):
    # What this thread last published, so re-attaching the same span (e.g. a
    # context that only changed baggage) does not push older history out of
    # the ring. Keyed by flare_context's fork epoch: a child starts afresh.
    last: tuple[int, int, int, tuple[int, str]] | None = None


_thread_state = _ThreadState()


def _local_root(span, span_id: int, trace_id: int) -> tuple[int, str]:
    known = _roots.get(span_id)
    if known is not None:
        return known
    root = None
    if hasattr(span, "parent"):  # SDK spans know their parent's ids and whether it is remote
        parent = span.parent
        if parent is None or parent.is_remote:
            root = (span_id, getattr(span, "name", "") or "")
        else:
            root = _roots.get(parent.span_id)
    if root is None:
        # A span whose parent we never saw (non-recording, or parented
        # explicitly): nested spans of one trace on one thread share a root.
        last = _thread_state.last
        root = last[3] if last is not None and last[2] == trace_id else _UNKNOWN_ROOT
    if root is not _UNKNOWN_ROOT:
        _roots.remember(span_id, root)
    return root


def _publish(context) -> None:
    span = _trace_api().get_current_span(context)
    sc = span.get_span_context()
    epoch = flare_context._state.epoch
    last = _thread_state.last
    if not sc.is_valid or sc.is_remote:
        # A remote parent is not work this process does: no local span runs.
        if last is None or last[0] != epoch or last[1] != 0:
            flare_context.span_detach()
            _thread_state.last = (epoch, 0, 0, _UNKNOWN_ROOT)
        return
    if last is not None and last[0] == epoch and last[1] == sc.span_id:
        return
    root = _local_root(span, sc.span_id, sc.trace_id)
    flare_context.span_attach(
        sc.trace_id.to_bytes(16, "big"),
        sc.span_id.to_bytes(8, "big"),
        root[0].to_bytes(8, "big") if root[0] else None,
        int(sc.trace_flags),
        root[1],
    )
    _thread_state.last = (epoch, sc.span_id, sc.trace_id, root)


class FlareRuntimeContext(_RuntimeContextBase):
    """A runtime context that publishes the current span on every change.

    Wraps another runtime context (by default the API's ContextVarsRuntimeContext)
    and delegates storage to it, so context semantics are unchanged.
    """

    def __init__(self, inner: _RuntimeContextBase | None = None) -> None:
        self._inner = inner if inner is not None else ContextVarsRuntimeContext()

    def attach(self, context):
        token = self._inner.attach(context)
        try:
            _publish(context)
        except Exception:  # profiling must never break the traced application
            pass
        return token

    def get_current(self):
        return self._inner.get_current()

    def detach(self, token) -> None:
        self._inner.detach(token)
        try:
            _publish(self._inner.get_current())
        except Exception:
            pass


class FlareSpanProcessor:
    """Records each span's local root when it starts, so spans that become
    current only later, or on another thread, still get the right root.

    It implements the SDK's SpanProcessor interface by duck typing rather than
    subclassing, so importing this module never imports the SDK.
    """

    def on_start(self, span, parent_context=None) -> None:
        sc = span.get_span_context()
        parent = span.parent
        if parent is None or parent.is_remote:
            root = (sc.span_id, span.name or "")
        else:
            root = _roots.get(parent.span_id)
            if root is None:
                return  # unknown parent: leave it to the runtime context's fallback
        _roots.remember(sc.span_id, root)

    def _on_ending(self, span) -> None:
        pass

    def on_end(self, span) -> None:
        _roots.forget(span.get_span_context().span_id)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def publish_resource_of(tracer_provider) -> bool:
    """Publishes an SDK TracerProvider's resource as the OTEL_CTX process
    context. Returns False when the provider has no resource or no name."""
    resource = getattr(tracer_provider, "resource", None)
    attrs = getattr(resource, "attributes", None) or {}
    name = attrs.get("service.name")
    if not name:
        return False
    version = attrs.get("service.version")
    env = attrs.get("deployment.environment.name", attrs.get("deployment.environment"))
    flare_context.publish_resource(str(name), None if version is None else str(version), None if env is None else str(env))
    return True


def install(tracer_provider=None) -> FlareRuntimeContext:
    """Turns the integration on for this process; safe to call twice.

    Wraps the API's current runtime context, and when an SDK TracerProvider is
    given (or set globally) adds FlareSpanProcessor and publishes its resource.
    """
    from opentelemetry import context as context_api

    runtime = context_api._RUNTIME_CONTEXT
    if not isinstance(runtime, FlareRuntimeContext):
        runtime = FlareRuntimeContext(runtime)
        context_api._RUNTIME_CONTEXT = runtime
    provider = tracer_provider if tracer_provider is not None else _trace_api().get_tracer_provider()
    if hasattr(provider, "add_span_processor") and not getattr(provider, "_flare_installed", False):
        provider.add_span_processor(FlareSpanProcessor())
        provider._flare_installed = True
        try:
            publish_resource_of(provider)
        except OSError:
            pass  # no discoverable mapping on this kernel: spans still publish
    return runtime
