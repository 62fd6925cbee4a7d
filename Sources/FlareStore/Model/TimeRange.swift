import FlareFlameGraph
import Foundation

/// A half-open interval of Unix nanoseconds, `[from, until)`.
public struct TimeRange: Sendable, Equatable {
    public var from: Int64
    public var until: Int64

    public init(from: Int64, until: Int64) { self.from = from; self.until = until }

    public static let nanosPerSecond: Int64 = 1_000_000_000

    /// The longest window the store accepts; queries look back this far for
    /// windows that start before `from` but overlap it.
    public static let maxWindowNanos: Int64 = 24 * 3600 * nanosPerSecond

    public static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1e9) }

    /// Parses `from`/`until` query parameters, defaulting to the last hour.
    public static func parse(from: String?, until: String?, now: Int64 = TimeRange.now()) throws(StoreError) -> TimeRange {
        let f = try from.map { (t) throws(StoreError) in try parseInstant(t, name: "from", now: now) } ?? now - 3600 * nanosPerSecond
        let u = try until.map { (t) throws(StoreError) in try parseInstant(t, name: "until", now: now) } ?? now
        guard f < u else {
            throw .badRequest("the time range is empty or inverted: from (\(f) ns) must be before until (\(u) ns)")
        }
        return TimeRange(from: f, until: u)
    }

    /// `now`, `now-15m`, a Unix time in seconds, milliseconds, microseconds or
    /// nanoseconds (told apart by magnitude, as Pyroscope does), or RFC 3339.
    public static func parseInstant(_ text: String, name: String, now: Int64) throws(StoreError) -> Int64 {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t == "now" { return now }
        if t.hasPrefix("now-") || t.hasPrefix("now+") {
            guard let d = try? parseDuration(String(t.dropFirst(4))) else {
                throw .badRequest("invalid \(name) \(JSONText.quoted(text)): use now-1h, now-30m, Unix seconds or RFC 3339")
            }
            return t.hasPrefix("now-") ? now - d : now + d
        }
        if let n = Int64(t) {
            guard n >= 0 else { throw .badRequest("invalid \(name) \(JSONText.quoted(text)): times before 1970 are not accepted") }
            switch n {
            case ..<100_000_000_000: return n * nanosPerSecond
            case ..<100_000_000_000_000: return n * 1_000_000
            case ..<100_000_000_000_000_000: return n * 1_000
            default: return n
            }
        }
        if let d = Double(t), d.isFinite, d >= 0, d < 1e11 { return Int64(d * 1e9) }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: t) ?? ISO8601DateFormatter().date(from: t) {
            return Int64(date.timeIntervalSince1970 * 1e9)
        }
        throw .badRequest("invalid \(name) \(JSONText.quoted(text)): use now-1h, Unix seconds (or ms/ns), or RFC 3339 like 2026-01-02T15:04:05Z")
    }

    /// `10s`, `500ms`, `5m`, `2h`, `7d` in nanoseconds.
    public static func parseDuration(_ text: String) throws(StoreError) -> Int64 {
        let units: [(String, Double)] = [("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9), ("d", 86400e9), ("w", 7 * 86400e9)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            if suffix == "s", number.hasSuffix("m") { continue }
            if let v = Double(number), v.isFinite, v >= 0, v * scale < 9e18 { return Int64(v * scale) }
        }
        throw .badRequest("invalid duration \(JSONText.quoted(text)): use a number with ms, s, m, h, d or w, like 10s or 7d")
    }
}
