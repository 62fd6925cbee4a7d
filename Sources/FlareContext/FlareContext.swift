import CFlareContext

/// The writer side of the Flare context ABI (docs/context-abi.md) for Swift:
/// the same four calls as `clients/c/flare_context.h`, which it wraps.
///
/// - ``publishResource(serviceName:serviceVersion:environment:)`` publishes the
///   OpenTelemetry process context (OTEL_CTX): who this process is.
/// - ``attach(_:)`` / ``detach()`` record, on the calling thread's FLARE_SLOTS
///   slot, that it now runs a span or none. Each is a few stores and one
///   timestamp (`rdtsc` where the kernel keeps time with the TSC, else a
///   vDSO `clock_gettime`); the first call on a thread claims its slot.
/// - ``releaseThread()`` frees the thread's slot before the thread exits
///   (it is freed at exit anyway).
///
/// ``withAttached(_:_:)`` is the scoped form: it attaches a span, runs a
/// closure and puts back whatever the thread published before, so nested
/// scopes restore their parents. Swift concurrency: a scope must not span an
/// `await`, because after a suspension the task may resume on another thread
/// while this one runs other work; `FlareTracing` handles async code.
public enum FlareContext {
    /// Publishes the OpenTelemetry process context with `service.name`,
    /// `service.version` and `deployment.environment.name`. Calling it again
    /// updates it in place.
    public static func publishResource(serviceName: String, serviceVersion: String? = nil, environment: String? = nil) throws(FlareContextError) {
        let rc = serviceName.withCString { name in
            withOptionalCString(serviceVersion) { version in
                withOptionalCString(environment) { env in cflarecontext_publish_resource(name, version, env) }
            }
        }
        if rc != 0 { throw FlareContextError(errno: -rc) }
    }

    /// Records that the calling thread now runs `span`.
    /// - Returns: false when the thread has no slot (all taken, or no mapping could be made).
    @inlinable @discardableResult
    public static func attach(_ span: FlareSpanContext) -> Bool {
        span.publish()
    }

    /// Records that the calling thread no longer runs any span.
    @discardableResult
    public static func detach() -> Bool {
        cflarecontext_span_detach() == 0
    }

    /// Frees the calling thread's slot now, e.g. before a pooled thread parks
    /// for a long time. The next attach claims one again.
    public static func releaseThread() {
        cflarecontext_thread_release()
    }

    /// Attaches `span` on this thread for the duration of `body`, then restores
    /// the span that was attached before (or detaches). `body` must not suspend.
    @inlinable
    public static func withAttached<T, E: Error>(_ span: FlareSpanContext, _ body: () throws(E) -> T) throws(E) -> T {
        let previous = enter(span)
        defer { leave(previous) }
        return try withExtendedLifetime(span) { () throws(E) -> T in try body() }
    }

    /// The span this thread published through ``withAttached(_:_:)``, if any.
    public static var current: FlareSpanContext? {
        cflarecontext_current().map { Unmanaged<FlareSpanContext>.fromOpaque($0).takeUnretainedValue() }
    }

    @usableFromInline
    static func enter(_ span: FlareSpanContext) -> UnsafeMutableRawPointer? {
        let previous = cflarecontext_current()
        span.publish()
        cflarecontext_set_current(Unmanaged.passUnretained(span).toOpaque())
        return previous
    }

    @usableFromInline
    static func leave(_ previous: UnsafeMutableRawPointer?) {
        cflarecontext_set_current(previous)
        if let previous {
            Unmanaged<FlareSpanContext>.fromOpaque(previous).takeUnretainedValue().publish()
        } else {
            cflarecontext_span_detach()
        }
    }

    private static func withOptionalCString<T>(_ string: String?, _ body: (UnsafePointer<CChar>?) -> T) -> T {
        guard let string else { return body(nil) }
        return string.withCString { body($0) }
    }
}

/// A failure of ``FlareContext/publishResource(serviceName:serviceVersion:environment:)``.
public struct FlareContextError: Error, Equatable, Sendable, CustomStringConvertible {
    /// EINVAL, E2BIG (the attributes do not fit the mapping), ENOTSUP (no
    /// discoverable mapping could be made) or ENOMEM.
    public var errno: Int32

    public var description: String {
        switch errno {
        case 7: "the resource attributes do not fit the OTEL_CTX mapping"
        case 95: "no discoverable OTEL_CTX mapping could be made (memfd and PR_SET_VMA_ANON_NAME both failed)"
        default: "publishing the process context failed (errno \(errno))"
        }
    }
}
