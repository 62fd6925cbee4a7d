import FlareContextReader
import FlareProfile
import FlareSampler
import FlareSpanReader

/// Which spans a stack was sampled in, as small ids into `SpanLabeler.labels`
/// (-1: none), so the aggregator's key stays cheap to hash.
struct SpanKey: Hashable {
    /// The ABI's answer: the entry in force at the sample's time.
    var span: Int32 = -1
    /// The naive "newest entry" answer; only filled when comparing readers.
    var newest: Int32 = -1

    static let none = SpanKey()
}

/// Labels samples with the span their thread was serving (docs/context-abi.md),
/// keeping each distinct label once.
struct SpanLabeler {
    let reader = SpanReader()
    private(set) var labels: [SpanLabel] = []
    private var ids: [SpanLabel: Int32] = [:]

    init(comparesWithNewest: Bool = false) {
        reader.comparesWithNewest = comparesWithNewest
    }

    /// Drain every millisecond once some process publishes spans: a slot's
    /// ring holds only its last few transitions.
    var wantsPromptDrains: Bool { reader.anyProcessPublishes }

    /// Reads the sample's span now: call it as soon as the sample is drained.
    mutating func key(for sample: SampleRecord) -> SpanKey {
        let (answer, newest) = reader.lookupBoth(pid: sample.pid, tid: sample.tid, sampleTime: sample.time)
        var key = SpanKey()
        if let label = answer.label { key.span = id(label) }
        if let label = newest?.label { key.newest = id(label) }
        return key
    }

    /// Keeps the reader's caches honest: an exec replaces the mappings, an
    /// exited thread's tid may be reused, a new thread may be reusing one.
    func observe(_ record: PerfRecord) {
        switch record {
        case .comm(let comm) where comm.isExec: reader.forgetProcess(comm.pid)
        case .fork(let task) where task.pid == task.parentPid: reader.threadStarted(pid: task.pid, tid: task.tid, time: task.time)
        case .exit(let task) where task.pid == task.tid: reader.forgetProcess(task.pid)
        case .exit(let task): reader.threadExited(pid: task.pid, tid: task.tid)
        default: break
        }
    }

    private mutating func id(_ label: SpanLabel) -> Int32 {
        if let id = ids[label] { return id }
        let id = Int32(labels.count)
        labels.append(label)
        ids[label] = id
        return id
    }

    /// The pprof sample labels for a key: Pyroscope's names, plus the process's service.
    func profileLabels(_ key: SpanKey, pid: Int32) -> [(String, String)] {
        var result: [(String, String)] = []
        if key.span >= 0 {
            let label = labels[Int(key.span)]
            result.append(("span_id", label.spanIDHex))
            result.append(("trace_id", label.traceIDHex))
            result.append(("span_name", label.rootSpanName))
        }
        if reader.comparesWithNewest && key.newest >= 0 {
            result.append(("newest_span_id", labels[Int(key.newest)].spanIDHex))
        }
        if let context = reader.processContext(pid: pid) {
            if let name = context.serviceName { result.append(("service_name", name)) }
            if let version = context.serviceVersion { result.append(("service_version", version)) }
        }
        return result
    }

    /// One comment per process that published a resource: `pid 42: service.name=checkout service.version=1.2`.
    func addComments(to builder: inout ProfileBuilder) {
        for (pid, context) in reader.processContexts.sorted(by: { $0.key < $1.key }) {
            let attributes = context.resource.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            builder.addComment("pid \(pid): " + attributes.joined(separator: " "))
        }
    }
}
