// Ground truth for span labels from Swift: like Tests/FlareTests/Workloads/spans.c.
//
//   SpanWorkload MODE RATE MILLISECONDS
//
// MODE context: two threads call FlareContext.attach/detach around each span.
// MODE tracing: two threads run each span with FlareTracer.withSpan (sync).
// MODE async:   two tasks run each span with FlareTracer.withSpan (async),
//               suspending in the middle of every span, so halves of one span
//               may run on different threads.
// Span ids encode what the test checks: span_id = 5A | worker << 40 | K << 32 | counter,
// and the trace id's low half repeats it. Span K burns CPU in spanWorkK.
import FlareContext
import FlareTracing
import Foundation
import Tracing

nonisolated(unsafe) var sink: UInt64 = 0

@inline(__always) func now() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

@inline(never) func spanWork0(_ deadline: UInt64) {
    var x: UInt64 = 0
    repeat { for _ in 0..<300 { x = x &* 6364136223846793005 &+ 1442695040888963407 } } while now() < deadline
    sink &+= x
}
@inline(never) func spanWork1(_ deadline: UInt64) {
    var x: UInt64 = 1
    repeat { for _ in 0..<300 { x = x &* 6364136223846793005 &+ 1442695040888963407 } } while now() < deadline
    sink &+= x
}
@inline(never) func spanWork2(_ deadline: UInt64) {
    var x: UInt64 = 2
    repeat { for _ in 0..<300 { x = x &* 6364136223846793005 &+ 1442695040888963407 } } while now() < deadline
    sink &+= x
}
@inline(never) func spanWork3(_ deadline: UInt64) {
    var x: UInt64 = 3
    repeat { for _ in 0..<300 { x = x &* 6364136223846793005 &+ 1442695040888963407 } } while now() < deadline
    sink &+= x
}
@inline(never) func spanWork4(_ deadline: UInt64) {
    var x: UInt64 = 4
    repeat { for _ in 0..<300 { x = x &* 6364136223846793005 &+ 1442695040888963407 } } while now() < deadline
    sink &+= x
}
@inline(never) func spanWork5(_ deadline: UInt64) {
    var x: UInt64 = 5
    repeat { for _ in 0..<300 { x = x &* 6364136223846793005 &+ 1442695040888963407 } } while now() < deadline
    sink &+= x
}
@inline(never) func spanWork6(_ deadline: UInt64) {
    var x: UInt64 = 6
    repeat { for _ in 0..<300 { x = x &* 6364136223846793005 &+ 1442695040888963407 } } while now() < deadline
    sink &+= x
}
@inline(never) func spanWork7(_ deadline: UInt64) {
    var x: UInt64 = 7
    repeat { for _ in 0..<300 { x = x &* 6364136223846793005 &+ 1442695040888963407 } } while now() < deadline
    sink &+= x
}
@inline(never) func spanWork8(_ deadline: UInt64) {
    var x: UInt64 = 8
    repeat { for _ in 0..<300 { x = x &* 6364136223846793005 &+ 1442695040888963407 } } while now() < deadline
    sink &+= x
}
@inline(never) func spanWork9(_ deadline: UInt64) {
    var x: UInt64 = 9
    repeat { for _ in 0..<300 { x = x &* 6364136223846793005 &+ 1442695040888963407 } } while now() < deadline
    sink &+= x
}
@inline(never) func spanWork10(_ deadline: UInt64) {
    var x: UInt64 = 10
    repeat { for _ in 0..<300 { x = x &* 6364136223846793005 &+ 1442695040888963407 } } while now() < deadline
    sink &+= x
}
@inline(never) func spanWork11(_ deadline: UInt64) {
    var x: UInt64 = 11
    repeat { for _ in 0..<300 { x = x &* 6364136223846793005 &+ 1442695040888963407 } } while now() < deadline
    sink &+= x
}

let work: [@Sendable (UInt64) -> Void] = [spanWork0, spanWork1, spanWork2, spanWork3, spanWork4, spanWork5, spanWork6, spanWork7, spanWork8, spanWork9, spanWork10, spanWork11]

let arguments = CommandLine.arguments
let mode = arguments.count > 1 ? arguments[1] : "context"
let rate = max(1, arguments.count > 2 ? UInt64(arguments[2]) ?? 1000 : 1000)
let milliseconds = arguments.count > 3 ? UInt64(arguments[3]) ?? 2000 : 2000
if mode == "bench" {
    // Writer cost: one attach + detach pair through FlareContext, beside a bare clock_gettime.
    let iterations = Int(arguments.count > 2 ? arguments[2] : "2000000") ?? 2_000_000
    let span = FlareSpanContext(traceIDHigh: 1, traceIDLow: 2, spanID: 3, rootSpanName: "bench")
    for _ in 0..<1000 { FlareContext.attach(span); FlareContext.detach() }
    let t0 = now()
    for _ in 0..<iterations { FlareContext.attach(span); FlareContext.detach() }
    let t1 = now()
    var total: UInt64 = 0
    for _ in 0..<iterations { total &+= now() }
    let t2 = now()
    sink &+= total
    print("swift attach+detach pair: \(Double(t1 - t0) / Double(iterations)) ns; clock_gettime: \(Double(t2 - t1) / Double(iterations)) ns")
    exit(0)
}
try FlareContext.publishResource(serviceName: "ground-truth-swift", serviceVersion: "2.0", environment: "test")
// Warm-up outside any span: the profiler meets this binary's libraries here
// (a debug build of Flare needs a few hundred ms to load their symbols), so
// the spans below measure attribution, not start-up.
@inline(never) func warmUp(_ deadline: UInt64) { while now() < deadline { sink &+= 1 } }
warmUp(now() + 800_000_000)
let end = now() + milliseconds * 1_000_000
let period = 1_000_000_000 / rate

func spanValue(worker: UInt64, k: UInt64, counter: UInt64) -> UInt64 {
    0x5A00_0000_0000_0000 | worker << 40 | k << 32 | (counter & 0xffff_ffff)
}

/// A tracer whose ids the caller chooses (through the context), propagated as W3C traceparent.
struct GroundTruthTracer: Tracer {
    enum IDKey: InstrumentationContextKey { typealias Value = UInt64 }
    enum SpanKey: InstrumentationContextKey { typealias Value = UInt64 }

    final class Span: Tracing.Span, @unchecked Sendable {
        let context: InstrumentationContext
        var operationName: String
        var attributes: SpanAttributes = [:]
        var isRecording: Bool { true }
        init(operationName: String, context: InstrumentationContext) { self.operationName = operationName; self.context = context }
        func setStatus(_ status: SpanStatus) {}
        func addEvent(_ event: SpanEvent) {}
        func addLink(_ link: SpanLink) {}
        func recordError<Instant: TracerInstant>(_ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant) {}
        func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {}
    }

    func startSpan<Instant: TracerInstant>(_ operationName: String, context: @autoclosure () -> InstrumentationContext, ofKind kind: SpanKind,
                                           at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt) -> Span {
        var context = context()
        context[SpanKey.self] = context[IDKey.self]
        return Span(operationName: operationName, context: context)
    }

    func forceFlush() {}
    func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout InstrumentationContext, using extractor: Extract) where Extract.Carrier == Carrier {}
    func inject<Carrier, Inject: Injector>(_ context: InstrumentationContext, into carrier: inout Carrier, using injector: Inject) where Inject.Carrier == Carrier {
        guard let span = context[SpanKey.self] else { return }
        let trace = 0x7ACE_0000_0000_0000 | (span & 0x00ff_ffff_0000_0000)
        injector.inject("00-" + hex(trace) + hex(span) + "-" + hex(span) + "-01", forKey: "traceparent", into: &carrier)
    }

    func hex(_ v: UInt64) -> String { let s = String(v, radix: 16); return String(repeating: "0", count: 16 - s.count) + s }
}

let tracer = FlareTracer(wrapping: GroundTruthTracer())

func context(for span: UInt64) -> InstrumentationContext {
    var context = InstrumentationContext.topLevel
    context[GroundTruthTracer.IDKey.self] = span
    return context
}

func runThread(worker: UInt64) {
    var next = now()
    var counter: UInt64 = 0
    while next < end {
        let k = counter % 12
        let span = spanValue(worker: worker, k: k, counter: counter)
        next += period
        let deadline = next
        switch mode {
        case "tracing":
            tracer.withSpan("span-\(k)", context: context(for: span)) { _ in work[Int(k)](deadline) }
        default:
            let published = FlareSpanContext(traceIDHigh: 0x7ACE_0000_0000_0000 | (span & 0x00ff_ffff_0000_0000), traceIDLow: span,
                                             spanID: span, rootSpanName: "span-\(k)")
            FlareContext.attach(published)
            work[Int(k)](deadline)
            FlareContext.detach()
        }
        counter += 1
    }
}

func runTask(worker: UInt64) async {
    var next = now()
    var counter: UInt64 = 0
    while next < end {
        let k = counter % 12
        let span = spanValue(worker: worker, k: k, counter: counter)
        let start = next
        next += period
        let deadline = next
        await tracer.withSpan("span-\(k)", context: context(for: span)) { _ in
            work[Int(k)](start + (deadline - start) / 2)
            await Task.yield()
            work[Int(k)](deadline)
        }
        counter += 1
    }
}

if mode == "async" {
    await withTaskGroup(of: Void.self) { group in
        for worker in 0..<2 { group.addTask { await runTask(worker: UInt64(worker)) } }
    }
} else {
    let finished = DispatchSemaphore(value: 0)
    for worker in 0..<2 {
        let thread = Thread {
            Thread.current.name = "worker\(worker)"
            runThread(worker: UInt64(worker))
            finished.signal()
        }
        thread.start()
    }
    for _ in 0..<2 { finished.wait() }
}
