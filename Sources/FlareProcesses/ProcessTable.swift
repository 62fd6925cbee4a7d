import FlareSampler

/// Tracks every process the sampler reports on, from perf's MMAP2, COMM, FORK
/// and EXIT records, seeded from /proc for processes that were already running,
/// so that each sampled address maps to a file and an offset in it.
public final class ProcessTable {
    public private(set) var processes: [Int32: ProcessState] = [:]
    /// Root of the proc filesystem; tests point it elsewhere.
    let procRoot: String

    public init(procRoot: String = "/proc") { self.procRoot = procRoot }

    /// The process, creating it (seeded from /proc if it is alive) on first sight.
    public func process(_ pid: Int32) -> ProcessState {
        if let state = processes[pid] { return state }
        let state = ProcessState(pid: pid, name: readComm("\(procRoot)/\(pid)/comm") ?? "pid \(pid)")
        processes[pid] = state
        seed(state)
        return state
    }

    /// Reads a live process's current mappings and thread names from /proc.
    public func seed(_ state: ProcessState) {
        if let maps = Linux.readFile("\(procRoot)/\(state.pid)/maps") {
            for line in maps.split(separator: "\n") {
                if let mapping = MappedFile(procMapsLine: line) { state.add(mapping) }
            }
        }
        for tid in Linux.threads(of: state.pid, procRoot: procRoot) {
            if let name = readComm("\(procRoot)/\(state.pid)/task/\(tid)/comm") { state.threadNames[tid] = name }
        }
    }

    /// Applies a side-band record.
    public func apply(_ record: PerfRecord) {
        switch record {
        case .mmap(let m):
            process(m.pid).add(MappedFile(start: m.start, end: m.start + m.length, fileOffset: m.fileOffset, path: m.path,
                                          inode: m.inode, device: m.device, buildID: m.buildID))
        case .comm(let c):
            let state = existingOrNew(c.pid)
            if c.isExec && c.pid == c.tid {
                state.removeAllMappings()
                state.threadNames.removeAll()
                state.hasExited = false
            }
            state.threadNames[c.tid] = c.name
            if c.pid == c.tid { state.name = c.name }
        case .fork(let t):
            if t.pid == t.parentPid {
                let state = existingOrNew(t.pid)
                state.threadNames[t.tid] = state.threadNames[t.parentTid] ?? state.name
            } else {
                let parent = process(t.parentPid)
                let child = existingOrNew(t.pid, name: parent.threadName(t.parentTid))
                child.copyMappings(from: parent)
                child.threadNames[t.tid] = parent.threadName(t.parentTid)
            }
        case .exit(let t):
            if t.pid == t.tid { processes[t.pid]?.hasExited = true }
        default:
            break
        }
    }

    /// The mapping of `address` in `pid`. An address outside every known
    /// mapping makes us re-read /proc/PID/maps, at most once a second.
    public func mapping(pid: Int32, address: UInt64, now: UInt64) -> MappedFile? {
        let state = process(pid)
        if let found = state.mapping(containing: address) { return found }
        guard !state.hasExited, now &- state.lastMapsReload > 1_000_000_000 else { return nil }
        state.lastMapsReload = now
        seed(state)
        return state.mapping(containing: address)
    }

    /// A process created by a record, without reading /proc (it may be too new
    /// or already gone; its records tell us what we need).
    private func existingOrNew(_ pid: Int32, name: String? = nil) -> ProcessState {
        if let state = processes[pid] { return state }
        let state = ProcessState(pid: pid, name: name ?? readComm("\(procRoot)/\(pid)/comm") ?? "pid \(pid)")
        processes[pid] = state
        return state
    }

    /// Forgets a process (the agent does this once its window is shipped).
    public func remove(_ pid: Int32) { processes[pid] = nil }

    private func readComm(_ path: String) -> String? {
        Linux.readFile(path)?.trimmingWhitespace()
    }
}
