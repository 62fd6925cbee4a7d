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
