import Dispatch
import FlareContext
import Tracing

/// Publishes the span each piece of work runs in, for the Flare profiler, by
/// wrapping any swift-distributed-tracing `Tracer`.
///
/// ```swift
/// let tracer = FlareTracer(wrapping: otelTracer)      // or any Tracer
/// try FlareContext.publishResource(serviceName: "checkout", serviceVersion: "1.4.2")
/// InstrumentationSystem.bootstrap(tracer)
///
/// try tracer.withSpan("GET /checkout") { span in       // sync: attach, run, restore
///     try render()
/// }
/// try await tracer.withSpan("GET /cart") { span in     // async: see below
///     try await loadCart()
/// }
/// ```
///
/// Spans are created, ended, exported and propagated by the wrapped tracer;
/// `FlareTracer` only adds publication. While the operation of one of its
/// `withSpan` calls runs, every thread that executes a part of it has the span
/// attached in its FLARE_SLOTS slot (docs/context-abi.md), and the thread's
/// previous span comes back when that part ends, so nested spans restore their parent.
///
/// ## Ids
/// The context ABI needs the W3C trace id, span id and trace flags of each span.
/// By default they are read the portable way: the wrapped tracer injects the
/// span's context into a dictionary and `traceparent` is parsed (swift-otel and
/// any W3C-propagating tracer do this). A tracer that propagates something
/// else can be wrapped with an `identify` closure that returns the ids.
/// Spans without ids (e.g. `NoOpTracer`) publish nothing.
///
/// The *local root* of a span is the outermost span of its trace in this
/// process: a span whose parent context holds no span published here. Its
/// name is what Flare groups profiles by (`span_name`).
///
/// ## Swift concurrency and suspension points
/// A thread does not belong to one task: at every `await` that suspends, the
/// task leaves its thread, which goes on to run other tasks, and the task
/// later resumes on whichever thread the executor picks. Publishing at span
/// start and end would therefore label other tasks' CPU with this span.
/// Instead, the async `withSpan` runs its operation with a *task executor
/// preference* (SE-0417) for a small executor that wraps every job of the
/// task: the span is attached on the thread that runs a job just before it
/// runs, and the thread's previous state restored as soon as the job suspends
/// or finishes. So:
/// - CPU between suspension points is labelled with the span, whichever
///   thread runs it; a thread that picks up another task is not.
/// - Child tasks (`async let`, task groups) inherit the preference, so their
///   work is labelled with the span too. Unstructured `Task {}` and
///   `Task.detached` do not; give them their own `withSpan`.
/// - Code that hops to an actor with its own executor (`@MainActor`, custom
///   actor executors) runs there unlabelled: not attributed rather than misattributed.
///   Default actors run on the preferred executor and are labelled.
/// - Each resumption costs one extra dispatch onto the global pool.
///
/// ## Calls Flare cannot see
/// `withSpan` is not a requirement of the `Tracer` protocol, so calls through
/// `any Tracer` (`InstrumentationSystem.tracer`, the global `withSpan`) use
/// the protocol's default, which only calls `startSpan` and `end`, and publish
/// nothing: a start and an end do not say which thread did the work between
/// them. Call `withSpan` on a `FlareTracer` value (or `withPublished` around
/// synchronous work of a span started by hand) to have it labelled.
public struct FlareTracer<Wrapped: Tracer>: Tracer {
    public typealias Span = FlareSpan<Wrapped.Span>

    public let wrapped: Wrapped
    let identify: @Sendable (InstrumentationContext) -> SpanIdentity?

    /// The ids of one span, as the context ABI publishes them.
    public struct SpanIdentity: Sendable, Equatable {
        public var traceID: [UInt8]
        public var spanID: [UInt8]
        public var traceFlags: UInt8

        public init(traceID: [UInt8], spanID: [UInt8], traceFlags: UInt8) {
            self.traceID = traceID
            self.spanID = spanID
            self.traceFlags = traceFlags
        }
    }

    /// Wraps `tracer`, reading span ids from the `traceparent` it injects.
    public init(wrapping tracer: Wrapped) {
        self.wrapped = tracer
        self.identify = { context in
            var carrier: [String: String] = [:]
            tracer.inject(context, into: &carrier, using: DictionaryInjector())
            return carrier["traceparent"].flatMap(Self.parseTraceparent)
        }
    }

    /// Wraps `tracer`, reading span ids with `identify` from a span's context.
    public init(wrapping tracer: Wrapped, identify: @escaping @Sendable (InstrumentationContext) -> SpanIdentity?) {
        self.wrapped = tracer
        self.identify = identify
    }

    /// Parses a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`).
    public static func parseTraceparent(_ header: String) -> SpanIdentity? {
        let parts = header.split(separator: "-")
        guard parts.count >= 4, parts[0].count == 2,
              let trace = FlareSpanContext(traceIDHex: String(parts[1]), spanIDHex: String(parts[2]), rootSpanName: ""),
              parts[3].count == 2, let flags = UInt8(parts[3], radix: 16)
        else { return nil }
        guard trace.traceID.contains(where: { $0 != 0 }), trace.spanID.contains(where: { $0 != 0 }) else { return nil }
        return SpanIdentity(traceID: trace.traceID, spanID: trace.spanID, traceFlags: flags)
    }

    public func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> InstrumentationContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> FlareSpan<Wrapped.Span> {
        let parent = context()
        let span = wrapped.startSpan(operationName, context: parent, ofKind: kind, at: instant(), function: function,
                                     file: fileID, line: line)
        var published: FlareSpanContext?
        if let ids = identify(span.context) {
            // The local root: inherited from a parent published here, else this span.
            let root = parent[FlareLocalRootKey.self]
            published = FlareSpanContext(traceID: ids.traceID, spanID: ids.spanID,
                                         localRootSpanID: root?.traceID == ids.traceID ? root?.spanID : ids.spanID,
                                         traceFlags: ids.traceFlags,
                                         rootSpanName: root?.traceID == ids.traceID ? root!.name : operationName)
        }
        return FlareSpan(wrapped: span, published: published)
    }

    public func activeSpan(identifiedBy context: InstrumentationContext) -> FlareSpan<Wrapped.Span>? {
        wrapped.activeSpan(identifiedBy: context).map { FlareSpan(wrapped: $0, published: context[FlarePublishedKey.self]) }
    }

    @available(*, deprecated)
    public func forceFlush() { wrapped.forceFlush() }

    public func inject<Carrier, Inject: Injector>(_ context: InstrumentationContext, into carrier: inout Carrier, using injector: Inject)
    where Inject.Carrier == Carrier {
        wrapped.inject(context, into: &carrier, using: injector)
    }

    public func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout InstrumentationContext, using extractor: Extract)
    where Extract.Carrier == Carrier {
        wrapped.extract(carrier, into: &context, using: extractor)
    }

    // MARK: - withSpan that publishes

    /// Runs `operation` in a new span, attached on this thread while it runs.
    public func withSpan<T>(
        _ operationName: String, context: @autoclosure () -> InstrumentationContext = .current ?? .topLevel,
        ofKind kind: SpanKind = .internal, function: String = #function, file fileID: String = #fileID, line: UInt = #line,
        _ operation: (FlareSpan<Wrapped.Span>) throws -> T
    ) rethrows -> T {
        let span = startSpan(operationName, context: context(), ofKind: kind, at: DefaultTracerClock.now, function: function,
                             file: fileID, line: line)
        defer { span.end() }
        do {
            return try InstrumentationContext.$current.withValue(span.context) {
                guard let published = span.published else { return try operation(span) }
                return try FlareContext.withAttached(published) { try operation(span) }
            }
        } catch {
            span.recordError(error)
            span.setStatus(.init(code: .error))
            throw error
        }
    }

    /// Runs `operation` in a new span; every part of it between suspension
    /// points is attached on the thread that runs it (see "Swift concurrency").
    public func withSpan<T>(
        _ operationName: String, context: @autoclosure () -> InstrumentationContext = .current ?? .topLevel,
        ofKind kind: SpanKind = .internal, isolation: isolated (any Actor)? = #isolation, function: String = #function,
        file fileID: String = #fileID, line: UInt = #line,
        _ operation: (FlareSpan<Wrapped.Span>) async throws -> T
    ) async rethrows -> T {
        let span = startSpan(operationName, context: context(), ofKind: kind, at: DefaultTracerClock.now, function: function,
                             file: fileID, line: line)
        defer { span.end() }
        do {
            return try await InstrumentationContext.$current.withValue(span.context) {
                guard let published = span.published else { return try await operation(span) }
                return try await withTaskExecutorPreference(SpanPublishingExecutor(published), isolation: isolation) {
                    try await operation(span)
                }
            }
        } catch {
            span.recordError(error)
            span.setStatus(.init(code: .error))
            throw error
        }
    }
}

/// A `Span` of the wrapped tracer, plus what Flare publishes for it.
public struct FlareSpan<Wrapped: Tracing.Span>: Tracing.Span {
    public let wrapped: Wrapped
    /// The ids and local root published while the span's work runs; nil when
    /// the wrapped tracer gave no ids.
    public let published: FlareSpanContext?

    init(wrapped: Wrapped, published: FlareSpanContext?) {
        self.wrapped = wrapped
        self.published = published
    }

    /// The wrapped span's context, carrying the local root for child spans.
    public var context: InstrumentationContext {
        var context = wrapped.context
        if let published {
            context[FlarePublishedKey.self] = published
            if context[FlareLocalRootKey.self]?.traceID != published.traceID {
                context[FlareLocalRootKey.self] = FlareLocalRoot(traceID: published.traceID, spanID: published.localRootSpanID,
                                                                 name: published.rootSpanName)
            }
        }
        return context
    }

    public var operationName: String {
        get { wrapped.operationName }
        nonmutating set { wrapped.operationName = newValue }
    }

    public var attributes: SpanAttributes {
        get { wrapped.attributes }
        nonmutating set { wrapped.attributes = newValue }
    }

    public var isRecording: Bool { wrapped.isRecording }
    public func setStatus(_ status: SpanStatus) { wrapped.setStatus(status) }
    public func addEvent(_ event: SpanEvent) { wrapped.addEvent(event) }
    public func addLink(_ link: SpanLink) { wrapped.addLink(link) }

    public func recordError<Instant: TracerInstant>(_ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant) {
        wrapped.recordError(error, attributes: attributes, at: instant())
    }

    public func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        wrapped.end(at: instant())
    }
}

extension FlareTracer {
    /// Attaches an already started span on this thread while the synchronous
    /// `body` runs: for spans started with `startSpan` and ended elsewhere.
    public func withPublished<T>(_ span: FlareSpan<Wrapped.Span>, _ body: () throws -> T) rethrows -> T {
        guard let published = span.published else { return try body() }
        return try FlareContext.withAttached(published) { try body() }
    }
}

/// Runs each job of a task on the global pool with the span attached on the
/// running thread for exactly the job's duration (one job = the code between
/// two suspension points).
final class SpanPublishingExecutor: TaskExecutor {
    let span: FlareSpanContext

    init(_ span: FlareSpanContext) { self.span = span }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        DispatchQueue.global().async {
            FlareContext.withAttached(self.span) {
                job.runSynchronously(on: self.asUnownedTaskExecutor())
            }
        }
    }
}

/// The local root of the published spans of a trace in this process.
struct FlareLocalRoot: Sendable {
    var traceID: [UInt8]
    var spanID: [UInt8]
    var name: String
}

enum FlareLocalRootKey: InstrumentationContextKey {
    typealias Value = FlareLocalRoot
}

enum FlarePublishedKey: InstrumentationContextKey {
    typealias Value = FlareSpanContext
}

struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }
}
