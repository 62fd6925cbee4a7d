/// A frame as aggregated: a module and an address within it (the file offset
/// for ELF modules, the address itself otherwise).
struct FrameKey: Hashable {
    var module: Int32
    var address: UInt64
}

/// Counts identical (stack, thread) pairs, so each distinct stack is
/// symbolized and encoded once.
struct StackAggregator {
    struct Key: Hashable {
        var frames: [FrameKey]
        var pid: Int32
        var tid: Int32
        var spans: SpanKey = .none

        /// Folds the frames with one multiply per frame, then lets Hasher mix
        /// the result: a 200-frame stack costs one Hasher round, not 400. The
        /// per-run seed keeps a sampled program from choosing colliding stacks.
        func hash(into hasher: inout Hasher) {
            var folded = Self.seed
            frames.withUnsafeBufferPointer { frames in
                for frame in frames {
                    folded = (folded ^ frame.address ^ UInt64(UInt32(bitPattern: frame.module)) << 40) &* 0x9E37_79B9_7F4A_7C15
                    folded ^= folded >> 29
                }
            }
            hasher.combine(folded)
            hasher.combine(frames.count)
            hasher.combine(pid)
            hasher.combine(tid)
            hasher.combine(spans)
        }

        private static let seed = UInt64.random(in: .min ... .max)
    }

    struct Value {
        var count: Int64
        var nanoseconds: Int64

        mutating func add(period: UInt64) {
            count += 1
            nanoseconds += Int64(clamping: period)
        }
    }

    private(set) var stacks: [Key: Value] = [:]
    private(set) var threadNames: [Int64: String] = [:]
    private(set) var sampleCount = 0

    mutating func add(frames: [FrameKey], pid: Int32, tid: Int32, threadName: String, period: UInt64, spans: SpanKey = .none) {
        // Modified in place: the (often long) key is hashed once.
        stacks[Key(frames: frames, pid: pid, tid: tid, spans: spans), default: Value(count: 0, nanoseconds: 0)].add(period: period)
        threadNames[Int64(pid) << 32 | Int64(UInt32(bitPattern: tid))] = threadName
        sampleCount += 1
    }

    /// Empties the aggregator, keeping the capacity: the agent starts each window afresh.
    mutating func reset() {
        stacks.removeAll(keepingCapacity: true)
        threadNames.removeAll(keepingCapacity: true)
        sampleCount = 0
    }

    func threadName(pid: Int32, tid: Int32) -> String {
        threadNames[Int64(pid) << 32 | Int64(UInt32(bitPattern: tid))] ?? ""
    }
}
