/// What Flare knows about one process: its name, its threads' names, and its
/// executable mappings sorted by address.
public final class ProcessState {
    public let pid: Int32
    public var name: String
    public var threadNames: [Int32: String] = [:]
    public private(set) var mappings: [MappedFile] = [] {
        didSet { mappingsVersion &+= 1 }
    }
    /// Changes whenever `mappings` does, so caches built from them know when to rebuild.
    public private(set) var mappingsVersion = 0
    public var hasExited = false
    /// When /proc/PID/maps was last re-read because an address was not found.
    var lastMapsReload: UInt64 = 0

    init(pid: Int32, name: String) {
        self.pid = pid
        self.name = name
    }

    /// The mapping containing `address`, by binary search.
    public func mapping(containing address: UInt64) -> MappedFile? {
        var low = 0
        var high = mappings.count
        while low < high {
            let mid = (low + high) / 2
            if mappings[mid].end <= address { low = mid + 1 } else { high = mid }
        }
        guard low < mappings.count, mappings[low].start <= address else { return nil }
        return mappings[low]
    }

    /// Adds a mapping, replacing whatever it overlaps (as mmap does).
    public func add(_ mapping: MappedFile) {
        guard mapping.end > mapping.start else { return }
        var kept: [MappedFile] = []
        kept.reserveCapacity(mappings.count + 1)
        for var existing in mappings {
            if existing.end <= mapping.start || existing.start >= mapping.end {
                kept.append(existing)
                continue
            }
            if existing.start < mapping.start {
                var head = existing
                head.end = mapping.start
                kept.append(head)
            }
            if existing.end > mapping.end {
                existing.fileOffset += mapping.end - existing.start
                existing.start = mapping.end
                kept.append(existing)
            }
        }
        kept.append(mapping)
        kept.sort { $0.start < $1.start }
        mappings = kept
    }

    /// An exec replaces the whole address space.
    public func removeAllMappings() { mappings.removeAll() }

    func copyMappings(from other: ProcessState) { mappings = other.mappings }

    public func threadName(_ tid: Int32) -> String { threadNames[tid] ?? name }
}
