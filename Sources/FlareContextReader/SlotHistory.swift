/// The transitions of one slot seen so far, merged from successive copies, so
/// a sample can be resolved even after the slot's own ring moved past it.
///
/// Each copy is validated exactly as section 3.6 says (owner, generation and
/// head re-read, `seq == 2i + 2`, times non-decreasing); an entry that passed
/// is a fact about index `i` of that generation and never changes, so copies
/// taken at different times can be merged. A sample is resolved from a run of
/// consecutive indices only: a gap means a transition nobody saw, and the
/// answer is `ring_overrun`, never a guess.
public struct SlotHistory: Sendable {
    public struct Entry: Sendable, Equatable {
        public var index: UInt64
        public var time: UInt64
        /// nil for a detach.
        public var label: SpanLabel?
    }

    public private(set) var ownerTID: UInt32
    public private(set) var generation: UInt64
    public private(set) var claimTimeNanos: UInt64
    /// The largest head seen: entries below it were written.
    public private(set) var head: UInt64 = 0
    /// When the owner released the slot (ABI 1.1), once a copy showed it.
    public private(set) var releaseTimeNanos: UInt64?
    /// Known entries, oldest first, consecutive indices within each run.
    public private(set) var entries: [Entry] = []
    /// Entries kept (a quarter more between trims); older ones are dropped.
    public let capacity: Int

    public init(ownerTID: UInt32, generation: UInt64, claimTimeNanos: UInt64, capacity: Int = 4096) {
        self.ownerTID = ownerTID
        self.generation = generation
        self.claimTimeNanos = claimTimeNanos
        self.capacity = max(capacity, 1)
    }

    /// Validates one copy of the slot and merges its entries.
    /// - Returns: nil, or why the copy was unusable. A copy of a new owner or
    ///   generation replaces the history.
    public mutating func merge(copy: UnsafeRawBufferPointer, reread: UnsafeRawBufferPointer, tid: UInt32, ringLength: Int) -> UnknownReason? {
        // Entries already known are facts: decode only the newer ones.
        var known: UInt64?
        if let header = SlotHeader(copy), header.generation == generation, header.claimTimeNanos == claimTimeNanos, tid == ownerTID {
            known = entries.last?.index
        }
        switch SlotResolver.validEntries(copy: copy, reread: reread, tid: tid, ringLength: ringLength, newerThan: known) {
        case .failure(let reason):
            return reason
        case .success(let valid):
            if valid.generation != generation || valid.claimTimeNanos != claimTimeNanos || tid != ownerTID {
                self = SlotHistory(ownerTID: tid, generation: valid.generation, claimTimeNanos: valid.claimTimeNanos, capacity: capacity)
            }
            head = max(head, valid.head)
            if let released = valid.releaseTimeNanos { releaseTimeNanos = released }
            insert(valid.entries)
            return nil
        }
    }

    private mutating func insert(_ new: [Entry]) {
        guard let first = new.first else { return }
        if let last = entries.last, first.index <= last.index + 1, first.index >= (entries.first?.index ?? 0) {
            // Overlaps or extends the known run: append what is newer.
            let newer = new.drop { $0.index <= last.index }
            entries.append(contentsOf: newer)
        } else if let last = entries.last, first.index > last.index + 1 {
            // A gap: transitions were missed. Keep the old run, mark the gap by index.
            entries.append(contentsOf: new)
        } else {
            entries = new
        }
        // Trim in batches: removing from the front moves the whole array.
        if entries.count > capacity + capacity / 4 { entries.removeFirst(entries.count - capacity) }
    }

    /// The answer for a sample at `sampleTime` from what is known.
    public func lookup(sampleTime: UInt64) -> SpanLookup {
        if claimTimeNanos > sampleTime { return .unknown(.claimedAfterSample) }
        if let released = releaseTimeNanos, sampleTime >= released { return .none(.noSlot) }
        guard var i = entries.indices.last else { return head == 0 ? .none(.noSpanYet) : .unknown(.ringOverrun) }
        while true {
            let entry = entries[i]
            if entry.time <= sampleTime {
                // The newest known entry answers only if no newer one was
                // written: a copy whose entries were all overwritten while it
                // was read (the reader preempted) still moved `head` on, and
                // a transition nobody saw may lie before the sample.
                if i == entries.indices.last, entry.index &+ 1 < head { return .unknown(.ringOverrun) }
                return entry.label.map { .span($0) } ?? .none(.detached)
            }
            if i == entries.startIndex || entries[i - 1].index + 1 != entry.index {
                // Reached the oldest known entry of this run, still newer than the sample.
                return entry.index == 0 ? .none(.noSpanYet) : .unknown(.ringOverrun)
            }
            i -= 1
        }
    }
}

extension SlotResolver {
    /// What one validated copy of a slot holds.
    public struct ValidEntries: Sendable {
        public var generation: UInt64
        public var claimTimeNanos: UInt64
        public var head: UInt64
        /// When the thread released the slot, if the copy shows it released (ABI 1.1).
        public var releaseTimeNanos: UInt64?
        /// Oldest first, consecutive indices.
        public var entries: [SlotHistory.Entry]
    }

    /// Section 3.6 steps 7–8 on one copy: the entries that can be trusted,
    /// only those with an index above `newerThan` when it is given.
    public static func validEntries(copy: UnsafeRawBufferPointer, reread: UnsafeRawBufferPointer, tid: UInt32,
                                    ringLength: Int, newerThan: UInt64? = nil) -> Result<ValidEntries, UnknownReason> {
        guard ringLength >= 1, ringLength <= Int(SlotsLayout.maxRingLength), ringLength & (ringLength - 1) == 0,
              let first = SlotHeader(copy), let second = SlotHeader(reread),
              first.belongs(to: tid), second.belongs(to: tid), first.generation == second.generation, second.head >= first.head
        else { return .failure(.slotChanged) }
        var result = ValidEntries(generation: first.generation, claimTimeNanos: first.claimTimeNanos, head: first.head,
                                  releaseTimeNanos: first.releaseTime(of: tid), entries: [])
        let h1 = first.head, h2 = second.head, ring = UInt64(ringLength)
        guard h1 > 0 else { return .success(result) }
        var lo: UInt64 = h1 > ring ? h1 - ring : 0
        if h2 >= ring, h2 - ring + 1 > lo { lo = h2 - ring + 1 }
        if let newerThan, newerThan >= lo { lo = newerThan &+ 1 }
        guard lo < h1 else { return .success(result) }
        let reader = ByteReader(bytes: copy)
        var index = h1 - 1
        var newerTime = UInt64.max
        var newestFirst: [SlotHistory.Entry] = []
        while true {
            let offset = SlotsLayout.slotHeaderSize + Int(index & (ring - 1)) * SlotsLayout.entrySize
            guard let seq = reader.u64(offset), let flags = reader.u8(offset + 8), let nameLength = reader.u16(offset + 10),
                  let time = reader.u64(offset + 16)
            else { return .failure(.slotChanged) }
            let (twice, overflow) = index.multipliedReportingOverflow(by: 2)
            guard !overflow, seq == twice &+ 2, Int(nameLength) <= SlotsLayout.rootNameMax, time <= newerTime else { break }
            newerTime = time
            var label: SpanLabel?
            if flags & SlotsLayout.attachedFlag != 0 {
                guard let l = entryLabel(reader, offset: offset, nameLength: Int(nameLength)) else { return .failure(.slotChanged) }
                label = l
            }
            newestFirst.append(SlotHistory.Entry(index: index, time: time, label: label))
            if index == lo { break }
            index -= 1
        }
        result.entries = newestFirst.reversed()
        return .success(result)
    }
}
