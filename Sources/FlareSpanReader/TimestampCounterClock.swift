import FlareSampler
import Glibc

/// Maps CLOCK_MONOTONIC times (the samples' clock) to x86-64 time-stamp
/// counter ticks, for FLARE_SLOTS mappings whose writers stamp entries with
/// rdtsc (docs/context-abi.md, clock_id 256). Writers do that only where the
/// kernel keeps time with the TSC, so CLOCK_MONOTONIC is a linear function of
/// it up to NTP's slow rate corrections: the rate comes from two readings of
/// both clocks far apart, and a reading at most a millisecond old anchors the
/// conversion, so the error stays in nanoseconds.
struct TimestampCounterClock {
    struct Reading {
        var monotonic: UInt64
        var ticks: UInt64
    }

    private let first: Reading
    private var latest: Reading?
    private var ticksPerNanosecond = 0.0

    /// Shortest span the first rate is measured over, and how old an anchor may get.
    static let firstCalibration: UInt64 = 10_000_000
    static let anchorAge: UInt64 = 1_000_000

    init() { first = Self.read() }

    /// The counter's value at CLOCK_MONOTONIC time `monotonic`; `now` is the
    /// caller's own reading of CLOCK_MONOTONIC, so the hot path reads no clock.
    mutating func ticks(atMonotonic monotonic: UInt64, now: UInt64) -> UInt64 {
        let anchor = currentAnchor(now: now)
        let delta = Double(Int64(bitPattern: monotonic &- anchor.monotonic)) * ticksPerNanosecond
        return delta >= 0 ? anchor.ticks &+ UInt64(delta) : anchor.ticks &- UInt64(-delta)
    }

    private mutating func currentAnchor(now: UInt64) -> Reading {
        if let latest, now < latest.monotonic + Self.anchorAge { return latest }
        var reading = Self.read()
        // The first conversion needs a rate: wait out the rest of the shortest
        // calibration span (only when the first mapping shows up within 10 ms).
        while reading.monotonic < first.monotonic + Self.firstCalibration {
            var pause = timespec(tv_sec: 0, tv_nsec: Int(first.monotonic + Self.firstCalibration - reading.monotonic))
            nanosleep(&pause, nil)
            reading = Self.read()
        }
        ticksPerNanosecond = Double(reading.ticks &- first.ticks) / Double(reading.monotonic - first.monotonic)
        latest = reading
        return reading
    }

    /// Both clocks at one instant: the counter read between two monotonic
    /// reads, paired with their midpoint (retried if preempted in between).
    static func read() -> Reading {
        var best: (Reading, UInt64)?
        for _ in 0..<5 {
            let before = Linux.monotonicNanos()
            let ticks = Linux.timestampCounter()
            let after = Linux.monotonicNanos()
            let reading = Reading(monotonic: before + (after - before) / 2, ticks: ticks)
            if best == nil || after - before < best!.1 { best = (reading, after - before) }
            if after - before < 1_000 { break }
        }
        return best!.0
    }
}
