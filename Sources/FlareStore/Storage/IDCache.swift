import FlareFlameGraph
import Synchronization

/// Ids of functions, stacks and series already in the database. Rows in these
/// tables never change once written, so the cache never goes stale, even when
/// several stores share one PostgreSQL database. Only ids of committed rows
/// are added.
final class IDCache: Sendable {
    private struct State {
        var functions: [FunctionName: Int64] = [:]
        var stacks: [[Int64]: Int64] = [:]
        var series: [SeriesKey: Int64] = [:]
    }

    struct SeriesKey: Hashable { var service: String; var labels: String }

    private let state = Mutex(State())
    /// Beyond this many entries a table's cache is dropped and refilled from
    /// the database as needed, so memory stays bounded.
    private let limit: Int

    init(limit: Int = 2_000_000) { self.limit = limit }

    func function(_ name: FunctionName) -> Int64? { state.withLock { $0.functions[name] } }
    func stack(_ frames: [Int64]) -> Int64? { state.withLock { $0.stacks[frames] } }
    func series(_ key: SeriesKey) -> Int64? { state.withLock { $0.series[key] } }

    func remember(functions: [FunctionName: Int64], stacks: [[Int64]: Int64], series: [SeriesKey: Int64]) {
        state.withLock { s in
            if s.functions.count + functions.count > limit { s.functions = [:] }
            if s.stacks.count + stacks.count > limit { s.stacks = [:] }
            s.functions.merge(functions) { a, _ in a }
            s.stacks.merge(stacks) { a, _ in a }
            s.series.merge(series) { a, _ in a }
        }
    }

    func forgetSeries() { state.withLock { $0.series = [:] } }
}

/// A stack's frames (global function ids, leaf first) as stored: varints.
enum StackFrames {
    static func encode(_ frames: [Int64]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(frames.count * 3)
        for f in frames {
            var v = UInt64(bitPattern: f)
            while v >= 0x80 { out.append(UInt8(truncatingIfNeeded: v) | 0x80); v >>= 7 }
            out.append(UInt8(v))
        }
        return out
    }

    static func decode(_ bytes: some Collection<UInt8>) -> [Int64] {
        var frames: [Int64] = []
        var result: UInt64 = 0
        var shift: UInt64 = 0
        for byte in bytes {
            if shift < 64 { result |= UInt64(byte & 0x7f) << shift }
            if byte & 0x80 == 0 {
                frames.append(Int64(bitPattern: result))
                result = 0; shift = 0
            } else {
                shift += 7
            }
        }
        return frames
    }
}
