/// How much of the agent one process may occupy: a process chooses how many
/// mappings and threads it has (docs/security.md). Beyond a limit the process
/// is still profiled; what did not fit is counted and left unnamed.
public struct ProcessLimits: Sendable, Equatable {
    /// Executable mappings held per process. Real programs have hundreds;
    /// each costs a binary-search slot and a copy on every insertion.
    public var mappings = 8192
    /// Thread names held per process (the `thread_name` sample label).
    public var threadNames = 4096

    public init(mappings: Int = 8192, threadNames: Int = 4096) {
        self.mappings = mappings
        self.threadNames = threadNames
    }
}

/// What Flare knows about one process: its name, its threads' names, and its
/// executable mappings sorted by address.
public final class ProcessState {
    public let pid: Int32
    public var name: String
    public private(set) var threadNames: [Int32: String] = [:]
    public private(set) var mappings: [MappedFile] = [] {
        didSet { mappingsVersion &+= 1 }
    }
    /// Changes whenever `mappings` does, so caches built from them know when to rebuild.
    public private(set) var mappingsVersion = 0
    public var hasExited = false
    /// When /proc/PID/maps was last re-read because an address was not found.
    var lastMapsReload: UInt64 = 0
    let limits: ProcessLimits
    /// Mappings and thread names turned away by `limits` since the last exec.
    public private(set) var droppedMappings = 0
    public private(set) var droppedThreadNames = 0

    init(pid: Int32, name: String, limits: ProcessLimits = ProcessLimits()) {
        self.pid = pid
        self.name = name
        self.limits = limits
    }

    /// The mapping containing `address`, by binary search.
    public func mapping(containing address: UInt64) -> MappedFile? {
        let index = firstIndex(endingAfter: address)
        guard index < mappings.count, mappings[index].start <= address else { return nil }
        return mappings[index]
    }

    /// The first mapping whose end lies after `address`.
    private func firstIndex(endingAfter address: UInt64) -> Int {
        var low = 0
        var high = mappings.count
        while low < high {
            let mid = (low + high) / 2
            if mappings[mid].end <= address { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// Adds a mapping, replacing whatever it overlaps (as mmap does). In place:
    /// a process that maps 100 000 regions costs a search and a move each,
    /// not a sort. Returns false when the process is at its mapping limit.
    @discardableResult
    public func add(_ mapping: MappedFile) -> Bool {
        guard mapping.end > mapping.start else { return true }
        let first = firstIndex(endingAfter: mapping.start)
        var last = first
        while last < mappings.count && mappings[last].start < mapping.end { last += 1 }
        var replacement: [MappedFile] = []
        if first < last, mappings[first].start < mapping.start {
            var head = mappings[first]
            head.end = mapping.start
            replacement.append(head)
        }
        replacement.append(mapping)
        if first < last, mappings[last - 1].end > mapping.end {
            var tail = mappings[last - 1]
            tail.fileOffset += mapping.end - tail.start
            tail.start = mapping.end
            replacement.append(tail)
        }
        guard mappings.count - (last - first) + replacement.count <= limits.mappings else {
            droppedMappings += 1
            return false
        }
        mappings.replaceSubrange(first..<last, with: replacement)
        return true
    }

    /// Names a thread; false when the process is at its thread-name limit (the
    /// thread then goes by the process's name).
    @discardableResult
    public func nameThread(_ tid: Int32, _ name: String) -> Bool {
        guard threadNames[tid] != nil || threadNames.count < limits.threadNames else {
            droppedThreadNames += 1
            return false
        }
        threadNames[tid] = name
        return true
    }

    /// A thread exited: its tid may name another thread later.
    public func forgetThread(_ tid: Int32) { threadNames[tid] = nil }

    /// An exec replaces the whole address space and every thread but one.
    public func startProgram() {
        mappings.removeAll()
        threadNames.removeAll()
        droppedMappings = 0
        droppedThreadNames = 0
        hasExited = false
    }

    /// Whether mappings were turned away: re-reading /proc/PID/maps could
    /// only find more than the limit holds.
    var isFull: Bool { droppedMappings > 0 }

    func copyMappings(from other: ProcessState) { mappings = other.mappings }

    public func threadName(_ tid: Int32) -> String { threadNames[tid] ?? name }
}
