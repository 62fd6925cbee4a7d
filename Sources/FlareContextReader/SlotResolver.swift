/// Applies the reader protocol (docs/context-abi.md, 3.6 steps 7–9) to one
/// copied slot. Free of I/O so tests can feed it any bytes; every read is
/// bounds-checked, so hostile or truncated bytes yield `.unknown`, never a trap.
public enum SlotResolver {
    /// How to pick the entry for a sample.
    public enum Selection: Sendable {
        /// The newest valid entry with `t_ns <= sample time`: the ABI's rule.
        case atSampleTime
        /// The newest valid entry whatever its time: "the span running now",
        /// the naive reader that benchmarks compare against. Never use it to label.
        case newest
    }

    /// - Parameters:
    ///   - copy: the whole slot (`slot_size` bytes) copied in one read.
    ///   - reread: the slot's first 32 bytes, read again after the copy.
    ///   - tid: the thread id as the writer sees it (its pid namespace).
    ///   - ringLength: from the validated mapping header.
    ///   - sampleTime: the sample's CLOCK_MONOTONIC time in nanoseconds.
    public static func resolve(copy: UnsafeRawBufferPointer, reread: UnsafeRawBufferPointer, tid: UInt32, ringLength: Int,
                               sampleTime: UInt64, selection: Selection = .atSampleTime) -> SpanLookup {
        guard ringLength >= 1, ringLength <= Int(SlotsLayout.maxRingLength), ringLength & (ringLength - 1) == 0,
              let first = SlotHeader(copy), let second = SlotHeader(reread)
        else { return .unknown(.slotChanged) }
        guard first.belongs(to: tid), second.belongs(to: tid), first.generation == second.generation,
              second.head >= first.head
        else { return .unknown(.slotChanged) }
        if first.claimTimeNanos > sampleTime && selection == .atSampleTime { return .unknown(.claimedAfterSample) }
        // A released slot (ABI 1.1) answers for the time before its release only.
        if let released = first.releaseTime(of: tid), sampleTime >= released, selection == .atSampleTime { return .none(.noSlot) }
        let h1 = first.head, h2 = second.head
        if h1 == 0 { return .none(.noSpanYet) }
        let ring = UInt64(ringLength)
        // Entries [H1 - R, H1) were complete when head was copied; once head
        // reached H2 the writer may be rewriting index H2 - R, so a ring of R
        // entries answers for the last R - 1 transitions.
        var lo: UInt64 = 0
        if h1 > ring { lo = h1 - ring }
        if h2 >= ring, h2 - ring + 1 > lo { lo = h2 - ring + 1 }
        guard lo < h1 else { return .unknown(.ringOverrun) }

        let reader = ByteReader(bytes: copy)
        var index = h1 - 1
        var newerTime = UInt64.max
        while true {
            let offset = SlotsLayout.slotHeaderSize + Int(index & (ring - 1)) * SlotsLayout.entrySize
            guard let seq = reader.u64(offset), let flags = reader.u8(offset + 8), let nameLength = reader.u16(offset + 10),
                  let time = reader.u64(offset + 16)
            else { return .unknown(.slotChanged) }  // a copy shorter than slot_size
            // A torn, hostile or time-reversed entry ends the trusted history.
            let (expected, overflow) = index.multipliedReportingOverflow(by: 2)
            guard !overflow, seq == expected &+ 2, Int(nameLength) <= SlotsLayout.rootNameMax, time <= newerTime else {
                lo = index + 1
                break
            }
            newerTime = time
            if time <= sampleTime || selection == .newest {
                guard flags & SlotsLayout.attachedFlag != 0 else { return .none(.detached) }
                return entryLabel(reader, offset: offset, nameLength: Int(nameLength)).map { .span($0) } ?? .unknown(.slotChanged)
            }
            if index == lo { break }
            index -= 1
        }
        // Every entry since the claim is newer than the sample: the thread had
        // claimed its slot but not attached yet. Otherwise the ring no longer
        // reaches back to the sample.
        return lo == 0 ? .none(.noSpanYet) : .unknown(.ringOverrun)
    }

    static func entryLabel(_ r: ByteReader, offset: Int, nameLength: Int) -> SpanLabel? {
        guard let traceFlags = r.u8(offset + 9), let high = r.u64BigEndian(offset + 24), let low = r.u64BigEndian(offset + 32),
              let span = r.u64BigEndian(offset + 40), let root = r.u64BigEndian(offset + 48),
              let name = r.slice(offset + 56, nameLength)
        else { return nil }
        return SpanLabel(traceIDHigh: high, traceIDLow: low, spanID: span, localRootSpanID: root, traceFlags: traceFlags,
                         rootSpanName: String(decoding: name, as: UTF8.self))
    }
}
