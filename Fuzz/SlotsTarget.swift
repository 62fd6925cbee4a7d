import FlareContextReader

/// The FLARE_SLOTS reader over a copied mapping (docs/context-abi.md, section 3).
///
/// The input is the mapping as a reader copies it: the 64-byte header, then
/// the slots. Bytes past the layout the header describes are the slots'
/// re-read prefixes (32 bytes each, in slot order); a slot without one is
/// re-read unchanged. Each of the first slots is copied as the reader does
/// (cut short where the input ends), resolved at sample times taken from its
/// own entries, and merged into a `SlotHistory`, which must answer exactly
/// as the resolver does for one copy.
enum SlotsTarget: FuzzTarget {
    static let name = "slots"

    /// Slots looked at per input: enough to merge copies of different owners.
    static let maxSlots = 4

    static func run(_ data: UnsafeRawBufferPointer) {
        let input = FuzzBytes(bytes: data)
        let header = try? SlotsHeader(input.slice(0, SlotsLayout.headerSize), mappingSize: UInt64(data.count))
        // An invalid header still yields a geometry, so the slot reader is
        // fuzzed whatever the header bytes say.
        let ringLength = header?.ringLength ?? 1 << Int(input.u32(20) % 13)
        let slotSize = header?.slotSize ?? SlotsLayout.slotHeaderSize + ringLength * SlotsLayout.entrySize
        let slotCount = min(header?.slotCount ?? max(0, (data.count - SlotsLayout.headerSize) / slotSize), maxSlots)
        let layoutEnd = header.map { Int($0.totalSize) } ?? data.count

        var merged = SlotHistory(ownerTID: 0, generation: 0, claimTimeNanos: 0, capacity: 1 + Int(input.u8(63) % 8))
        for index in 0..<slotCount {
            let copy = input.slice(SlotsLayout.headerSize + index * slotSize, slotSize)
            let extra = input.slice(layoutEnd + index * SlotsLayout.slotHeaderPrefix, SlotsLayout.slotHeaderPrefix)
            let reread = extra.count == SlotsLayout.slotHeaderPrefix ? extra : input.slice(SlotsLayout.headerSize + index * slotSize, SlotsLayout.slotHeaderPrefix)
            checkSlot(copy: copy, reread: reread, ringLength: ringLength)
            let slot = FuzzBytes(bytes: copy)
            _ = merged.merge(copy: copy, reread: reread, tid: slot.u32(0), ringLength: ringLength)
            for time in sampleTimes(slot, ringLength: ringLength) { _ = merged.lookup(sampleTime: time) }
        }
    }

    private static func checkSlot(copy: UnsafeRawBufferPointer, reread: UnsafeRawBufferPointer, ringLength: Int) {
        let slot = FuzzBytes(bytes: copy)
        let tid = slot.u32(0)
        let times = sampleTimes(slot, ringLength: ringLength)
        _ = SlotResolver.resolve(copy: copy, reread: reread, tid: tid ^ 1, ringLength: ringLength, sampleTime: times[0])
        _ = SlotResolver.resolve(copy: copy, reread: reread, tid: tid, ringLength: ringLength, sampleTime: 0, selection: .newest)
        _ = SlotResolver.validEntries(copy: copy, reread: reread, tid: tid, ringLength: ringLength, newerThan: slot.u64(24) &- 2)

        var history = SlotHistory(ownerTID: 0, generation: 0, claimTimeNanos: 0)
        let failure = history.merge(copy: copy, reread: reread, tid: tid, ringLength: ringLength)
        for time in times {
            let resolved = SlotResolver.resolve(copy: copy, reread: reread, tid: tid, ringLength: ringLength, sampleTime: time)
            guard failure == nil else { continue }
            let looked = history.lookup(sampleTime: time)
            FuzzCheck.require(looked == resolved, "one copy: SlotHistory says \(looked), SlotResolver \(resolved) at \(time)")
        }
        guard failure == nil else { return }
        // Merging the same copy again learns nothing new.
        let entries = history.entries
        FuzzCheck.require(history.merge(copy: copy, reread: reread, tid: tid, ringLength: ringLength) == nil, "a second merge of the same copy fails")
        FuzzCheck.require(history.entries == entries, "a second merge of the same copy changes the history")
    }

    /// Times around the slot's claim and its first entries: where the answers change.
    private static func sampleTimes(_ slot: FuzzBytes, ringLength: Int) -> [UInt64] {
        let claim = slot.u64(16)
        var times: [UInt64] = [claim, 0, UInt64.max, claim &- 1]
        for entry in 0..<min(ringLength, 8) {
            let time = slot.u64(SlotsLayout.slotHeaderSize + entry * SlotsLayout.entrySize + 16)
            times += [time, time &- 1, time &+ 1]
        }
        return times
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    SlotsTarget.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
#endif
