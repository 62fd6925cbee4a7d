import FlareContextReader
import Foundation
import Testing

/// The reader's pure logic against the spec's worked examples and hostile bytes.
@Suite("context reader")
struct ContextReaderTests {
    /// A slot as section 3 lays it out: header then `ring` entries.
    static func slot(owner: UInt32 = 7, generation: UInt64 = 1, claim: UInt64 = 1000, head: UInt64, ring: Int = 16,
                     entries: [(index: UInt64, attached: Bool, time: UInt64)]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 64 + ring * 128)
        func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            withUnsafeBytes(of: value.littleEndian) { for (i, b) in $0.enumerated() { bytes[offset + i] = b } }
        }
        put(owner, at: 0); put(generation, at: 8); put(claim, at: 16); put(head, at: 24)
        for e in entries {
            let o = 64 + Int(e.index % UInt64(ring)) * 128
            put(2 * e.index + 2, at: o)
            bytes[o + 8] = e.attached ? 1 : 0
            put(e.time, at: o + 16)
            if e.attached {
                put(UInt64(0xAB).bigEndian, at: o + 32)
                put((0x1000 + e.index).bigEndian, at: o + 40)
                let name = Array("GET /x".utf8)
                put(UInt16(name.count), at: o + 10)
                for (i, b) in name.enumerated() { bytes[o + 56 + i] = b }
            }
        }
        return bytes
    }

    /// Section 3.6's worked example: 40 entries alternating attach/detach, entry i at 2000 + 100 i.
    @Test func workedExampleOfTheSpec() {
        var entries: [(index: UInt64, attached: Bool, time: UInt64)] = []
        for i in 0..<UInt64(40) { entries.append((index: i, attached: i % 2 == 0, time: 2000 + 100 * i)) }
        let copy = Self.slot(head: 40, entries: entries)
        func lookup(_ t: UInt64) -> SpanLookup {
            copy.withUnsafeBytes { c in SlotResolver.resolve(copy: c, reread: UnsafeRawBufferPointer(rebasing: c[0..<32]), tid: 7, ringLength: 16, sampleTime: t) }
        }
        #expect(lookup(5470).label?.spanID == 0x1000 + 34)
        #expect(lookup(5470).label?.rootSpanName == "GET /x")
        #expect(lookup(4450) == .unknown(.ringOverrun))
        #expect(lookup(999) == .unknown(.claimedAfterSample))
        #expect(lookup(5550) == .none(.detached))
        // The history gives the same answers from the same copy.
        var history = SlotHistory(ownerTID: 7, generation: 0, claimTimeNanos: 0)
        copy.withUnsafeBytes { c in #expect(history.merge(copy: c, reread: UnsafeRawBufferPointer(rebasing: c[0..<32]), tid: 7, ringLength: 16) == nil) }
        #expect(history.lookup(sampleTime: 5470).label?.spanID == 0x1000 + 34)
        #expect(history.lookup(sampleTime: 4450) == .unknown(.ringOverrun))
        #expect(history.lookup(sampleTime: 999) == .unknown(.claimedAfterSample))
        // Another owner, or a generation change during the copy: never a label.
        copy.withUnsafeBytes { c in
            var again = Array(c[0..<32])
            again[8] = 2
            again.withUnsafeBytes { #expect(SlotResolver.resolve(copy: c, reread: $0, tid: 7, ringLength: 16, sampleTime: 5470) == .unknown(.slotChanged)) }
            #expect(SlotResolver.resolve(copy: c, reread: UnsafeRawBufferPointer(rebasing: c[0..<32]), tid: 8, ringLength: 16, sampleTime: 5470) == .unknown(.slotChanged))
        }
    }

    /// Copies taken as the ring moves on build one history that reaches further
    /// back than the ring; a stretch no copy saw answers `ring_overrun`; a new
    /// claim starts afresh; the history keeps at most a quarter over its capacity.
    @Test func historyMergesSuccessiveCopies() {
        func copy(head: UInt64, generation: UInt64 = 1, claim: UInt64 = 1000) -> [UInt8] {
            let first = head > 16 ? head - 16 : 0
            return Self.slot(generation: generation, claim: claim, head: head,
                             entries: (first..<head).map { (index: $0, attached: $0 % 2 == 0, time: 2000 + 100 * $0) })
        }
        func merge(_ history: inout SlotHistory, _ bytes: [UInt8]) {
            bytes.withUnsafeBytes { c in #expect(history.merge(copy: c, reread: UnsafeRawBufferPointer(rebasing: c[0..<32]), tid: 7, ringLength: 16) == nil) }
        }
        var history = SlotHistory(ownerTID: 7, generation: 0, claimTimeNanos: 0, capacity: 40)
        for head in stride(from: UInt64(8), through: 40, by: 8) { merge(&history, copy(head: head)) }
        #expect(history.entries.map(\.index) == Array(0..<40))
        #expect(history.lookup(sampleTime: 2050).label?.spanID == 0x1000)  // entry 0, long overwritten in the ring
        #expect(history.lookup(sampleTime: 5470).label?.spanID == 0x1000 + 34)
        // Entries 40...48 are never seen: samples then are unknown, later ones resolved.
        merge(&history, copy(head: 64))
        #expect(history.lookup(sampleTime: 2000 + 100 * 45) == .unknown(.ringOverrun))
        #expect(history.lookup(sampleTime: 2000 + 100 * 50 + 50).label?.spanID == 0x1000 + 50)
        // A copy trusts R - 1 entries (the oldest may be rewritten as it is
        // read): 40 + 15 went over 40 + 10, trimmed back to the newest 40.
        #expect(history.entries.first?.index == 15 && history.entries.count == 40)
        merge(&history, copy(head: 72))
        #expect(history.entries.count == 48 && history.entries.last?.index == 71)
        // The slot claimed again: the old owner's entries are gone.
        merge(&history, copy(head: 4, generation: 2, claim: 9000))
        #expect(history.entries.map(\.index) == [0, 1, 2, 3])
        #expect(history.lookup(sampleTime: 5470) == .unknown(.claimedAfterSample))
    }

    /// A reader preempted while it copies: the writer went a whole ring past
    /// the copied head before the re-read, so no entry of the copy can be
    /// trusted. The newest entry known from before is then no answer for a
    /// later sample (transitions nobody saw lie between), only ring_overrun.
    @Test func aCopyOverrunWhileReadLeavesLaterSamplesUnknown() {
        func copy(head: UInt64) -> [UInt8] {
            let first = head > 16 ? head - 16 : 0
            return Self.slot(head: head, entries: (first..<head).map { (index: $0, attached: true, time: 2000 + 100 * $0) })
        }
        var history = SlotHistory(ownerTID: 7, generation: 0, claimTimeNanos: 0)
        let early = copy(head: 8)
        early.withUnsafeBytes { c in #expect(history.merge(copy: c, reread: UnsafeRawBufferPointer(rebasing: c[0..<32]), tid: 7, ringLength: 16) == nil) }
        #expect(history.lookup(sampleTime: 2750).label?.spanID == 0x1000 + 7)
        // Head 40 when copied, 56 when read again: every copied entry may have been rewritten.
        let overrun = copy(head: 40), later = copy(head: 56)
        overrun.withUnsafeBytes { c in
            later.withUnsafeBytes { r in #expect(history.merge(copy: c, reread: UnsafeRawBufferPointer(rebasing: r[0..<32]), tid: 7, ringLength: 16) == nil) }
        }
        #expect(history.entries.last?.index == 7)
        #expect(history.lookup(sampleTime: 2750) == .unknown(.ringOverrun))
        #expect(history.lookup(sampleTime: 2650).label?.spanID == 0x1000 + 6)
    }

    /// ABI 1.1: a slot its thread released still answers for the time before
    /// the release, both from one copy and from a history, and says "no slot"
    /// after it; a 1.0 slot whose owner is 0 names nobody; another thread's
    /// release, or a release during the copy, is never taken for this one's.
    @Test func releasedSlotAnswersForTheTimeBeforeItsRelease() {
        var entries: [(index: UInt64, attached: Bool, time: UInt64)] = []
        for i in 0..<UInt64(6) { entries.append((index: i, attached: i % 2 == 0, time: 2000 + 100 * i)) }
        var copy = Self.slot(owner: 0, head: 6, entries: entries)
        func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            withUnsafeBytes(of: value.littleEndian) { for (i, b) in $0.enumerated() { copy[offset + i] = b } }
        }
        put(UInt32(7), at: 4)        // released_tid
        put(UInt64(2600), at: 32)    // release_time_ns
        func lookup(_ t: UInt64, tid: UInt32 = 7, reread: [UInt8]? = nil) -> SpanLookup {
            copy.withUnsafeBytes { c in
                (reread ?? Array(c[0..<32])).withUnsafeBytes { SlotResolver.resolve(copy: c, reread: $0, tid: tid, ringLength: 16, sampleTime: t) }
            }
        }
        #expect(lookup(2450).label?.spanID == 0x1000 + 4)
        #expect(lookup(2550) == .none(.detached))
        #expect(lookup(2600) == .none(.noSlot))
        #expect(lookup(2450, tid: 8) == .unknown(.slotChanged))
        var history = SlotHistory(ownerTID: 7, generation: 0, claimTimeNanos: 0)
        copy.withUnsafeBytes { c in #expect(history.merge(copy: c, reread: UnsafeRawBufferPointer(rebasing: c[0..<32]), tid: 7, ringLength: 16) == nil) }
        #expect(history.releaseTimeNanos == 2600)
        #expect(history.lookup(sampleTime: 2450).label?.spanID == 0x1000 + 4)
        #expect(history.lookup(sampleTime: 2700) == .none(.noSlot))
        // Claimed again by thread 8 while the copy was taken: the re-read shows it.
        var reclaimed = Array(copy[0..<32])
        reclaimed[0] = 8; reclaimed[4] = 0; reclaimed[8] = 2
        #expect(lookup(2450, reread: reclaimed) == .unknown(.slotChanged))
        // A 1.0 writer's released slot: released_tid stays 0, nobody's.
        put(UInt32(0), at: 4)
        #expect(lookup(2450) == .unknown(.slotChanged))
    }

    /// Section 2.3's worked example: service.name = "checkout" in 30 bytes.
    @Test func decodesTheProcessContextExample() throws {
        var payload: [UInt8] = [0x0a, 0x1c, 0x0a, 0x1a, 0x0a, 0x0c]
        payload += Array("service.name".utf8)
        payload += [0x12, 0x0a, 0x0a, 0x08]
        payload += Array("checkout".utf8)
        #expect(payload.count == 30)
        #expect(try ProcessContext(payload: payload).serviceName == "checkout")
    }

    /// Random and mutated bytes, many thousands of times: no trap, no out-of-bounds read.
    @Test func hostileBytesNeverCrashTheReader() {
        var rng = SystemRandomNumberGenerator()
        var validEntries: [(index: UInt64, attached: Bool, time: UInt64)] = []
        for i in 0..<UInt64(40) { validEntries.append((index: i, attached: true, time: i)) }
        let valid = Self.slot(head: 40, entries: validEntries)
        var header = [UInt8](repeating: 0, count: 64)
        for (i, b) in "FLARESLT".utf8.enumerated() { header[i] = b }
        for i in 0..<20_000 {
            let length = Int.random(in: 0..<300, using: &rng)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if i % 3 == 0 {  // mutate a valid slot so the checks get further
                bytes = valid
                for _ in 0..<8 { bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
                if i % 2 == 0 { bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &rng))) }
            }
            let ring = [1, 2, 16, 3, 0, 4096, 8192][i % 7]
            bytes.withUnsafeBytes { b in
                _ = SlotResolver.resolve(copy: b, reread: b, tid: 7, ringLength: ring, sampleTime: UInt64.random(in: 0...5000, using: &rng))
                _ = SlotResolver.resolve(copy: b, reread: b, tid: 7, ringLength: ring, sampleTime: 100, selection: .newest)
                var history = SlotHistory(ownerTID: 7, generation: 0, claimTimeNanos: 0)
                _ = history.merge(copy: b, reread: b, tid: 7, ringLength: ring)
                _ = history.lookup(sampleTime: 3)
                _ = try? SlotsHeader(b, mappingSize: UInt64.random(in: 0...1 << 20, using: &rng))
                _ = try? ProcessContextHeader(b)
                _ = try? ProcessContext(payload: b)
            }
            var h = header
            for j in 8..<64 where Bool.random(using: &rng) { h[j] = UInt8.random(in: 0...255, using: &rng) }
            h.withUnsafeBytes { _ = try? SlotsHeader($0, mappingSize: 1 << 20) }
        }
    }

    @Test func parsesMapsAndNSpid() {
        let maps = """
            7f0000000000-7f0000084000 rw-s 00000000 00:01 1234                       /memfd:FLARE_SLOTS (deleted)
            7f1000000000-7f1000002000 rw-p 00000000 00:00 0                          [anon:OTEL_CTX]
            7f2000000000-7f2000001000 rw-p 00000000 00:00 0                          /tmp/FLARE_SLOTS
            """
        #expect(ProcText.mappings(named: "FLARE_SLOTS", in: maps).map(\.size) == [0x84000])
        #expect(ProcText.mappings(named: "OTEL_CTX", in: maps).map(\.start) == [0x7f1000000000])
        // Several matches, a name twice on one line, the last line without a newline.
        let many = """
            7f3000000000-7f3000001000 rw-p 00000000 00:00 0 /opt/FLARE_SLOTS/FLARE_SLOTS
            7f4000000000-7f4000010000 rw-s 00000000 00:01 77 /memfd:FLARE_SLOTS (deleted)
            7f5000000000-7f5000020000 rw-p 00000000 00:00 0 [anon:FLARE_SLOTS]
            """
        #expect(ProcText.mappings(named: "FLARE_SLOTS", in: many).map(\.size) == [0x10000, 0x20000])
        #expect(ProcText.mappings(named: "OTEL_CTX", in: many).isEmpty)
        #expect(ProcText.mappings(named: "FLARE_SLOTS", in: "").isEmpty)
        #expect(ProcText.innermostNSpid(status: "Name:\tx\nNSpid:\t4242\t17\n") == 17)
        #expect(ProcText.nspidDepth(status: "NSpid:\t4242\n") == 1)
    }
}
