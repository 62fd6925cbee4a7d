import FlareProcesses
import FlareSampler
import FlareSymbols
import FlareUnwind

/// The per-record path shared by `flare record` and the agent: side-band
/// records update the process table; samples are unwound, their frames
/// resolved to modules, and the stacks counted.
struct SamplePipeline<Unwinder: StackUnwinder> {
    let processes: ProcessTable
    var registry: ModuleRegistry
    var unwinder: Unwinder
    var aggregator = StackAggregator()
    /// Labels samples with their thread's span; nil when span labels are off.
    var spans: SpanLabeler?
    /// Which processes to profile; nil profiles every one. Asked before any
    /// unwinding, so excluded processes cost only the drain.
    var includes: ((Int32) -> Bool)?
    private(set) var lostRecords: UInt64 = 0
    private(set) var truncatedStacks: [String: Int] = [:]
    private(set) var samplesByPid: [Int32: Int] = [:]
    private(set) var excludedSamples = 0
    private(set) var firstSampleTime: UInt64 = 0
    private(set) var lastSampleTime: UInt64 = 0

    /// - Parameter locator: `.live` while the sampled processes run; offline
    ///   replays must neither read /proc nor open files through it.
    init(unwinder: Unwinder, symbolizer: Symbolizer, locator: FileLocator = .live, limits: ProcessLimits = ProcessLimits()) {
        self.unwinder = unwinder
        self.registry = ModuleRegistry(symbolizer: symbolizer, locator: locator)
        self.processes = ProcessTable(procRoot: locator.live ? "/proc" : "/nonexistent/proc", limits: limits)
    }

    mutating func consume(_ records: [PerfRecord]) {
        // Spans first, for the whole batch, before any unwinding or symbol
        // loading delays the reads: a thread's ring only reaches back a few transitions.
        let spanKeys = spans.map { _ in labelSpans(records) } ?? []
        for (index, record) in records.enumerated() {
            switch record {
            case .sample(let sample): add(sample, spans: spanKeys.isEmpty ? .none : spanKeys[index])
            case .lost(let count, _): lostRecords += count
            default: processes.apply(record)
            }
        }
    }

    private mutating func labelSpans(_ records: [PerfRecord]) -> [SpanKey] {
        records.map { record in
            spans?.observe(record)
            guard case .sample(let sample) = record, sample.pid > 0 || sample.tid > 0, includes?(sample.pid) ?? true else { return .none }
            return spans?.key(for: sample) ?? .none
        }
    }

    private mutating func add(_ sample: SampleRecord, spans spanKey: SpanKey = .none) {
        // pid -1/0 with tid 0 is the idle task: no process to attribute to.
        guard sample.pid > 0 || sample.tid > 0 else { return }
        guard includes?(sample.pid) ?? true else {
            excludedSamples += 1
            return
        }
        let process = processes.process(sample.pid)
        let stack = unwinder.unwind(sample, process: process)
        var frames: [FrameKey] = []
        frames.reserveCapacity(stack.frames.count + 1)
        var truncation = stack.truncation
        // One process's consecutive frames are mostly in one mapping: check it first.
        var last: (mapping: MappedFile, module: Int32)?
        for frame in stack.frames {
            let address = frame.lookupAddress
            if frame.isKernel {
                frames.append(FrameKey(module: ModuleRegistry.kernelID, address: address))
                continue
            }
            if last == nil || address < last!.mapping.start || address >= last!.mapping.end {
                last = processes.mapping(pid: sample.pid, address: address, now: sample.time).map { ($0, registry.module(for: $0, pid: sample.pid)) }
            }
            if let (mapping, module) = last {
                frames.append(FrameKey(module: module, address: Self.moduleAddress(address, in: mapping)))
            } else if frame.isReturnAddress {
                // A return address outside all executable code: the walk went
                // astray through a function without a frame pointer. Stop here.
                truncation = .badFrame
                break
            } else {
                frames.append(FrameKey(module: registry.unknownModule(), address: address))
            }
        }
        if let truncation {
            truncatedStacks[truncation.rawValue, default: 0] += 1
            frames.append(FrameKey(module: ModuleRegistry.markerID, address: UInt64(truncation.markerIndex)))
        }
        aggregator.add(frames: frames, pid: sample.pid, tid: sample.tid,
                       threadName: process.threadName(sample.tid), period: sample.period, spans: spanKey)
        samplesByPid[sample.pid, default: 0] += 1
        if firstSampleTime == 0 { firstSampleTime = sample.time }
        lastSampleTime = max(lastSampleTime, sample.time)
    }
}

extension SamplePipeline {
    /// Starts module ids afresh, releasing the images the registry holds;
    /// only between windows, while no counted stack names a module.
    mutating func forgetModules() {
        registry = ModuleRegistry(symbolizer: registry.symbolizer, locator: registry.locator)
    }

    /// Starts a new window: counted stacks and per-window tallies are cleared;
    /// process and module knowledge stays.
    mutating func startWindow() {
        aggregator.reset()
        samplesByPid.removeAll(keepingCapacity: true)
        truncatedStacks.removeAll(keepingCapacity: true)
        firstSampleTime = 0
        lastSampleTime = 0
    }

    /// Where an address lies within its module: the file offset for files, the
    /// offset from the start for named kernel-provided areas such as [vdso],
    /// and the address itself for anonymous memory (JIT code is named by address).
    static func moduleAddress(_ address: UInt64, in mapping: MappedFile) -> UInt64 {
        if mapping.isFileBacked { return mapping.fileOffset(of: address) }
        return mapping.path.hasPrefix("[") && !mapping.isAnonymous ? address - mapping.start : address
    }
}

extension UnwoundStack.Truncation {
    static let all = allCases
    var markerIndex: Int { Self.all.firstIndex(of: self)! }
}
