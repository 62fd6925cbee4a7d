import FlareProcesses
import FlareProfile
import FlareSampler
import FlareSpanReader
import FlareSymbols
import FlareUnwind
import Glibc

/// How the agent samples: the `flare record` knobs that make sense always-on.
public struct ContinuousOptions: Sendable {
    public var frequency: UInt64 = 99
    public var callGraph: RecordOptions.CallGraph = .dwarf
    public var stackBytes: UInt32 = 16384
    public var inlineFrames = true
    public var spanLabels = true
    /// Which processes to profile, asked once per process (again after an exec).
    public var includes: @Sendable (ProcessIdentity) -> Bool = { _ in true }
    /// Memory the symbol and unwind caches may hold before the least recently
    /// used files are dropped.
    public var cacheBytes = 32 << 20
    /// The largest DWARF read for source lines and inlined calls (see
    /// `Symbolizer`). libdw holds two to three times a file's DWARF while it
    /// is open (libc's 10 MB of debug sections cost the agent 27 MB): 8 MiB
    /// keeps the agent within 64 MiB on a host whose libc has debug info.
    public var maxDebugInfoBytes = 8 << 20
    /// What one process may make the agent hold.
    public var processLimits = ProcessLimits()
    /// Where debug files missing on the host are fetched from; nil: nowhere.
    public var debuginfod: DebuginfodFetcher.Settings?

    public init() {}
}

/// What the agent knows of a process when it first samples it: enough to
/// filter it and to label its windows, even after it has exited.
public struct ProcessIdentity: Sendable, Hashable {
    public var pid: Int32
    /// The kernel's short name (`comm`), as `ps` shows it.
    public var name: String
    /// The executable's file name, or `name` when /proc no longer has it.
    public var executableName: String
    /// The process's cgroup v2 path (`/system.slice/foo.service`), or "".
    public var cgroup: String
    /// A container id found in the cgroup path, or "".
    public var containerID: String

    /// The service of a process that names none: its name as `ps` shows it,
    /// or the executable's name where the kernel cut that name short (15 bytes).
    public var serviceName: String {
        name.utf8.count >= 15 && executableName.hasPrefix(name) ? executableName : name
    }
}

/// One window of one service (or one executable, for processes that name no
/// service): the profile and the resource labels it ships with.
public struct ProcessGroupWindow: Sendable {
    public var service: String
    public var resource: [String: String]
    public var pids: [Int32]
    public var profile: Profile
    public var samples: Int
}

/// Running totals for the agent's self-metrics.
public struct ContinuousStatistics: Sendable {
    public var samples = 0
    public var excludedSamples = 0
    public var lostRecords: UInt64 = 0
    public var unwindFailures = 0
    public var unlabelledSamples = 0
    public var labelledSamples = 0
    public var cacheBytes = 0
    public var trackedProcesses = 0
    /// The most processes held between two drains during the last window
    /// (the gauge above is read after a cut has forgotten the exited ones).
    public var trackedProcessesPeak = 0
    /// Files dropped from the symbol and unwind caches to stay within budget.
    public var cacheEvictions = 0
    /// Mappings and thread names turned away by the per-process limits.
    public var droppedMappings = 0
    public var droppedThreadNames = 0
    /// JIT perf maps not read (not a regular file, not the process's own, writable by others) or read only in part.
    public var perfMapsRefused = 0
    public var perfMapsTruncated = 0
    /// Debug files fetched from debuginfod, fetches that found nothing (or
    /// failed, or timed out), and fetched files refused (wrong build-id, not ELF).
    public var debuginfodFetched = 0
    public var debuginfodMisses = 0
    public var debuginfodRefused = 0

    public init() {}
}

extension ContinuousStatistics {
    /// These counts added to `current`'s (a reload replaces the profiler);
    /// the gauges are `current`'s.
    public func accumulating(_ current: ContinuousStatistics) -> ContinuousStatistics {
        var sum = current
        sum.samples += samples
        sum.excludedSamples += excludedSamples
        sum.lostRecords += lostRecords
        sum.unwindFailures += unwindFailures
        sum.unlabelledSamples += unlabelledSamples
        sum.labelledSamples += labelledSamples
        sum.cacheEvictions += cacheEvictions
        sum.droppedMappings += droppedMappings
        sum.droppedThreadNames += droppedThreadNames
        sum.perfMapsRefused += perfMapsRefused
        sum.perfMapsTruncated += perfMapsTruncated
        sum.debuginfodFetched += debuginfodFetched
        sum.debuginfodMisses += debuginfodMisses
        sum.debuginfodRefused += debuginfodRefused
        return sum
    }
}

/// Whole-machine sampling cut into windows: the agent's side of the recording
/// pipeline. Not thread-safe: one thread drains and cuts.
public final class ContinuousProfiler {
    private let session: SamplingSession
    private let symbolizer: Symbolizer
    private let unwindTables: UnwindTableCache
    private var pipeline: SamplePipeline<AnyUnwinder>
    /// The pipeline's process table, reachable while the pipeline is mutating.
    private let processTable: ProcessTable
    private var options: ContinuousOptions
    private var identities: [Int32: ProcessIdentity] = [:]
    private var decisions: [Int32: Bool] = [:]
    /// Processes that exited with samples in the open window: forgotten at its cut.
    private var exited: Set<Int32> = []
    private var commNames: [Int32: String] = [:]
    private var totals = ContinuousStatistics()
    private var trackedPeak = 0
    private var lastWindowTrackedPeak = 0
    private let periodNanos: Int64

    public init(options: ContinuousOptions) throws(SamplerError) {
        self.options = options
        session = try SamplingSession(target: .system, options: SamplingOptions(
            frequency: options.frequency, userStackBytes: options.callGraph == .dwarf ? options.stackBytes : 0))
        symbolizer = Symbolizer(expandInlines: options.inlineFrames, maxDebugInfoBytes: options.maxDebugInfoBytes)
        symbolizer.debuginfod = options.debuginfod.map(DebuginfodFetcher.init)
        unwindTables = UnwindTableCache()
        pipeline = SamplePipeline(unwinder: Self.unwinder(options, unwindTables), symbolizer: symbolizer, limits: options.processLimits)
        if options.spanLabels { pipeline.spans = SpanLabeler() }
        processTable = pipeline.processes
        periodNanos = Int64(1_000_000_000 / max(options.frequency, 1))
        pipeline.includes = { [unowned self] pid in self.includes(pid) }
    }

    private static func unwinder(_ options: ContinuousOptions, _ unwindTables: UnwindTableCache) -> AnyUnwinder {
        options.callGraph == .dwarf ? .dwarf(DwarfUnwinder(cache: unwindTables)) : .framePointer(FramePointerUnwinder())
    }

    /// Replaces the process filter (a configuration reload); every process is decided again.
    public func setIncludes(_ includes: @escaping @Sendable (ProcessIdentity) -> Bool) {
        options.includes = includes
        decisions.removeAll()
    }

    /// The ring-buffer descriptors to poll for readability.
    public var pollDescriptors: [Int32] { session.pollDescriptors }

    /// Whether some sampled process publishes span slots: then drain often,
    /// since a thread's ring only reaches back a few transitions.
    public var wantsPromptDrains: Bool { pipeline.spans?.wantsPromptDrains ?? false }

    /// Drains what the kernel has written and runs it through the pipeline.
    public func drain(final: Bool = false) {
        let records = session.drain(final: final)
        // Names as of the end of the batch, before the pipeline (which asks
        // for decisions while it works through the batch) has applied them.
        for record in records {
            switch record {
            case .comm(let comm) where comm.pid == comm.tid:
                commNames[comm.pid] = comm.name
                if comm.isExec {
                    // A new program: decide again, under its new name.
                    decisions[comm.pid] = nil
                    identities[comm.pid] = nil
                }
            case .fork(let task) where task.pid != task.parentPid:
                // A new process: a pid reused since an exit is decided afresh.
                forgetIdentity(task.pid)
                exited.remove(task.pid)
                commNames[task.pid] = commNames[task.parentPid] ?? processTable.processes[task.parentPid]?.name
            case .exit(let task) where task.pid == task.tid:
                exited.insert(task.pid)
            default:
                break
            }
        }
        pipeline.consume(records)
        // A process that exited and left no sample in this window is
        // forgotten now, not at the cut: a host that forks thousands of
        // processes a second would otherwise hold each of them for a whole
        // window. The batch holds every record older than its drain began
        // (`SamplingSession.drain`), so no sample of it is still on its way.
        for pid in exited where pipeline.samplesByPid[pid] == nil {
            forget(pid)
            exited.remove(pid)
        }
        trackedPeak = max(trackedPeak, processTable.processes.count)
    }

    /// Stops sampling and drains the rest (the agent is shutting down).
    public func stop() {
        session.disable()
        drain(final: true)
    }

    public var statistics: ContinuousStatistics {
        var s = totals
        s.samples += pipeline.aggregator.sampleCount
        s.lostRecords = session.lostRecords
        s.excludedSamples = pipeline.excludedSamples
        if let stats = pipeline.spans?.reader.statistics {
            s.unlabelledSamples = stats.unknown.values.reduce(0, +)
            s.labelledSamples = stats.labelled
        }
        s.cacheBytes = cacheBytes
        s.trackedProcesses = pipeline.processes.processes.count
        s.trackedProcessesPeak = lastWindowTrackedPeak
        s.droppedMappings = processTable.droppedMappings
        s.droppedThreadNames = processTable.droppedThreadNames
        s.perfMapsRefused = symbolizer.perfMapsRefused
        s.perfMapsTruncated = symbolizer.perfMapsTruncated
        if let fetched = symbolizer.debuginfod?.current {
            s.debuginfodFetched = fetched.fetched
            s.debuginfodMisses = fetched.misses
            s.debuginfodRefused = fetched.refused
        }
        return s
    }

    /// Closes the current window: one profile per service (processes that
    /// name none are grouped by executable), then forgets exited processes and
    /// trims the caches.
    /// - Parameters:
    ///   - start, end: the window's wall-clock range in Unix nanoseconds.
    ///   - hostName: the `host.name` resource label.
    public func cutWindow(start: Int64, end: Int64, hostName: String) -> [ProcessGroupWindow] {
        symbolizer.jitMapsMayHaveGrown()
        // Debug files fetched since the last window name this window's frames of those files.
        symbolizer.adoptFetchedDebugInfo()
        lastWindowTrackedPeak = max(trackedPeak, processTable.processes.count)
        trackedPeak = 0
        var groups: [GroupKey: [Int32]] = [:]
        for pid in pipeline.samplesByPid.keys {
            groups[groupKey(pid), default: []].append(pid)
        }
        var windows: [ProcessGroupWindow] = []
        for (key, pids) in groups.sorted(by: { $0.key.service < $1.key.service }) {
            var assembler = ProfileAssembler(registry: pipeline.registry, symbolizer: symbolizer, periodNanos: periodNanos,
                                             timeNanos: start, durationNanos: end - start)
            let spans = pipeline.spans
            assembler.add(pipeline.aggregator, only: Set(pids)) { k in spans?.profileLabels(k.spans, pid: k.pid) ?? [] }
            var resource = key.resource
            resource["host.name"] = hostName
            // A pid resource label only when one process makes the window: a
            // series per short-lived process would grow without bound. Samples
            // always carry their pid label.
            if pids.count == 1 { resource["pid"] = String(pids[0]) }
            windows.append(ProcessGroupWindow(service: key.service, resource: resource, pids: pids.sorted(), profile: assembler.profile,
                                              samples: pids.reduce(0) { $0 + (pipeline.samplesByPid[$1] ?? 0) }))
        }
        totals.samples += pipeline.aggregator.sampleCount
        totals.unwindFailures += pipeline.truncatedStacks.values.reduce(0, +)
        pipeline.startWindow()
        forgetExitedProcesses()
        trimCaches()
        symbolizer.releasePages()
        unwindTables.releasePages()
        return windows
    }

    private struct GroupKey: Hashable {
        var service: String
        var resource: [String: String]
    }

    private func groupKey(_ pid: Int32) -> GroupKey {
        let identity = identity(pid)
        var resource: [String: String] = ["process.executable.name": identity.executableName]
        if !identity.containerID.isEmpty { resource["container.id"] = identity.containerID }
        if let context = pipeline.spans?.reader.processContext(pid: pid), let service = context.serviceName, !service.isEmpty {
            resource["service.name"] = service
            if let version = context.serviceVersion { resource["service.version"] = version }
            if let environment = context.resource["deployment.environment.name"] { resource["deployment.environment.name"] = environment }
            return GroupKey(service: service, resource: resource)
        }
        resource["service.name"] = identity.serviceName
        return GroupKey(service: identity.serviceName, resource: resource)
    }

    private func includes(_ pid: Int32) -> Bool {
        if let decided = decisions[pid] { return decided }
        let decision = options.includes(identity(pid))
        decisions[pid] = decision
        return decision
    }

    private func identity(_ pid: Int32) -> ProcessIdentity {
        if let known = identities[pid] { return known }
        // Not through `pipeline`: this runs inside its mutating consume. And
        // read-only: an entry made here would shadow the one a FORK record makes.
        // Names a process chose for itself become service names, labels and
        // log fields: control characters are replaced and the length bounded.
        let name = TerminalText.safe(commNames[pid] ?? processTable.processes[pid]?.name
            ?? Linux.readFile("/proc/\(pid)/comm", maxBytes: 64)?.trimmingWhitespace() ?? "pid \(pid)", maxLength: Self.maxNameLength)
        var executable = name
        if let target = Self.readLink("/proc/\(pid)/exe") {
            let base = target.hasSuffix(" (deleted)") ? String(target.dropLast(10)) : target
            executable = TerminalText.safe(String(base.split(separator: "/").last ?? Substring(name)), maxLength: Self.maxNameLength)
        }
        let cgroup = TerminalText.safe(Self.cgroupPath(pid), maxLength: 4 * Self.maxNameLength)
        let identity = ProcessIdentity(pid: pid, name: name, executableName: executable, cgroup: cgroup,
                                       containerID: Self.containerID(inCgroup: cgroup))
        identities[pid] = identity
        return identity
    }

    /// The longest process or executable name kept (a file name's limit).
    static let maxNameLength = 255

    private func forgetExitedProcesses() {
        exited.forEach(forget)
        exited.removeAll(keepingCapacity: true)
    }

    private func forget(_ pid: Int32) {
        pipeline.processes.remove(pid)
        pipeline.spans?.reader.dropProcess(pid)
        symbolizer.forgetProcess(pid)
        forgetIdentity(pid)
    }

    private func forgetIdentity(_ pid: Int32) {
        identities[pid] = nil
        decisions[pid] = nil
        commNames[pid] = nil
    }

    private var cacheBytes: Int { symbolizer.memoryBytes + unwindTables.memoryBytes }

    /// Over budget, drops the files used longest ago from both caches until
    /// they hold three quarters of it (so the next windows do not evict
    /// again at once); `force` (the agent is over its memory limit) drops
    /// everything. A dropped file is parsed again on its next sample, which
    /// costs milliseconds, and memory stays bounded however many distinct
    /// binaries run. Then the caches' clock moves on to the next window.
    private func trimCaches(force: Bool = false) {
        defer {
            symbolizer.clock += 1
            unwindTables.clock = symbolizer.clock
        }
        let held = cacheBytes
        guard force || held > options.cacheBytes else { return }
        let files = symbolizer.cachedFiles + unwindTables.cachedFiles
        let dropped = force ? files : files.leastRecentlyUsed(freeing: held - options.cacheBytes * 3 / 4)
        totals.cacheEvictions += dropped.count
        // Each cache ignores the other's keys.
        let keys = Set(dropped.map(\.key))
        symbolizer.evict(keys)
        unwindTables.evict(keys)
        // The module registry holds the images it has met: start it afresh so
        // that the evicted ones are released (the window's stacks, which name
        // modules by index, were just reset).
        pipeline.forgetModules()
    }

    /// Drops the symbol and unwind caches now (the agent is over its memory limit).
    public func dropCaches() {
        trimCaches(force: true)
    }

    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The cgroup v2 path (`0::/path`), or the first v1 path.
    static func cgroupPath(_ pid: Int32) -> String {
        guard let text = Linux.readFile("/proc/\(pid)/cgroup") else { return "" }
        let lines = text.split(separator: "\n")
        let line = lines.first { $0.hasPrefix("0::") } ?? lines.first
        guard let line, let colon = line.lastIndex(of: ":") else { return "" }
        return String(line[line.index(after: colon)...])
    }

    /// A 64-hex-digit component of the cgroup path (docker-ID.scope,
    /// cri-containerd-ID.scope, kubepods/…/ID), as container runtimes name them.
    static func containerID(inCgroup path: String) -> String {
        for component in path.split(separator: "/").reversed() {
            var name = Substring(component)
            if name.hasSuffix(".scope") { name = name.dropLast(6) }
            if let dash = name.lastIndex(of: "-") { name = name[name.index(after: dash)...] }
            if name.count == 64 && name.allSatisfy({ $0.isHexDigit }) { return String(name) }
        }
        return ""
    }
}

/// The two unwinders behind one type, so the agent can choose at run time.
enum AnyUnwinder: StackUnwinder {
    case dwarf(DwarfUnwinder)
    case framePointer(FramePointerUnwinder)

    mutating func unwind(_ sample: SampleRecord, process: ProcessState) -> UnwoundStack {
        switch self {
        case .dwarf(var u):
            // Unique while it mutates, so its memo is not copied on write.
            self = .framePointer(FramePointerUnwinder())
            let stack = u.unwind(sample, process: process)
            self = .dwarf(u)
            return stack
        case .framePointer(var u):
            let stack = u.unwind(sample, process: process)
            self = .framePointer(u)
            return stack
        }
    }
}
