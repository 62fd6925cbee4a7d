import FlareSampler

/// Tracks every process the sampler reports on, from perf's MMAP2, COMM, FORK
/// and EXIT records, seeded from /proc for processes that were already running,
/// so that each sampled address maps to a file and an offset in it.
public final class ProcessTable {
    public private(set) var processes: [Int32: ProcessState] = [:]
    /// Root of the proc filesystem; tests point it elsewhere.
    let procRoot: String
    public let limits: ProcessLimits
    /// Mappings and thread names the limits turned away, over all processes.
    public private(set) var droppedMappings = 0
    public private(set) var droppedThreadNames = 0

    public init(procRoot: String = "/proc", limits: ProcessLimits = ProcessLimits()) {
        self.procRoot = procRoot
        self.limits = limits
    }

    /// The process, creating it (seeded from /proc if it is alive) on first sight.
    public func process(_ pid: Int32) -> ProcessState {
        if let state = processes[pid] { return state }
        let state = ProcessState(pid: pid, name: readComm("\(procRoot)/\(pid)/comm") ?? "pid \(pid)", limits: limits)
        processes[pid] = state
        seedMappings(state)
        // Thread names once, at first sight, and no more than the limit: a
        // process with 100 000 threads would cost 100 000 reads.
        for tid in Linux.threads(of: state.pid, procRoot: procRoot).prefix(limits.threadNames) {
            if let threadName = readComm("\(procRoot)/\(state.pid)/task/\(tid)/comm") { name(state, tid, threadName) }
        }
        return state
    }

    /// Reads a live process's current executable mappings from /proc.
    public func seedMappings(_ state: ProcessState) {
        guard let maps = Linux.readFile("\(procRoot)/\(state.pid)/maps") else { return }
        for line in maps.split(separator: "\n") {
            if let mapping = MappedFile(procMapsLine: line) { add(mapping, to: state) }
        }
    }

    /// Applies a side-band record.
    public func apply(_ record: PerfRecord) {
        switch record {
        case .mmap(let m):
            add(MappedFile(start: m.start, end: m.start + m.length, fileOffset: m.fileOffset, path: m.path,
                           inode: m.inode, device: m.device, buildID: m.buildID), to: process(m.pid))
        case .comm(let c):
            let state = existingOrNew(c.pid)
            if c.isExec && c.pid == c.tid { state.startProgram() }
            name(state, c.tid, c.name)
            if c.pid == c.tid { state.name = c.name }
        case .fork(let t):
            if t.pid == t.parentPid {
                let state = existingOrNew(t.pid)
                name(state, t.tid, state.threadNames[t.parentTid] ?? state.name)
            } else {
                // A new process, even where its pid names an exited one not yet forgotten.
                let parent = process(t.parentPid)
                let child = ProcessState(pid: t.pid, name: parent.threadName(t.parentTid), limits: limits)
                processes[t.pid] = child
                child.copyMappings(from: parent)
                name(child, t.tid, parent.threadName(t.parentTid))
            }
        case .exit(let t):
            if t.pid == t.tid { processes[t.pid]?.hasExited = true } else { processes[t.pid]?.forgetThread(t.tid) }
        default:
            break
        }
    }

    /// The mapping of `address` in `pid`. An address outside every known
    /// mapping makes us re-read /proc/PID/maps, at most once a second, and
    /// never for a process at its mapping limit.
    public func mapping(pid: Int32, address: UInt64, now: UInt64) -> MappedFile? {
        let state = process(pid)
        if let found = state.mapping(containing: address) { return found }
        guard !state.hasExited, !state.isFull, now &- state.lastMapsReload > 1_000_000_000 else { return nil }
        state.lastMapsReload = now
        seedMappings(state)
        return state.mapping(containing: address)
    }

    private func add(_ mapping: MappedFile, to state: ProcessState) {
        if !state.add(mapping) { droppedMappings += 1 }
    }

    private func name(_ state: ProcessState, _ tid: Int32, _ name: String) {
        if !state.nameThread(tid, name) { droppedThreadNames += 1 }
    }

    /// A process created by a record, without reading /proc (it may be too new
    /// or already gone; its records tell us what we need).
    private func existingOrNew(_ pid: Int32) -> ProcessState {
        if let state = processes[pid] { return state }
        let state = ProcessState(pid: pid, name: readComm("\(procRoot)/\(pid)/comm") ?? "pid \(pid)", limits: limits)
        processes[pid] = state
        return state
    }

    /// Forgets a process (the agent does this once its window is shipped).
    public func remove(_ pid: Int32) { processes[pid] = nil }

    private func readComm(_ path: String) -> String? {
        Linux.readFile(path)?.trimmingWhitespace()
    }
}
