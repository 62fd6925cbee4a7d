import FlareProfile
import FlareSampler
import FlareSpanReader
import FlareSymbols
import FlareUnwind
import Glibc

/// What `flare record` profiles, how, and for how long.
public struct RecordOptions: Sendable {
    public enum Target: Sendable {
        case command([String])
        case process(Int32)
        case system
    }

    /// How user stacks are walked.
    public enum CallGraph: String, Sendable, CaseIterable {
        /// DWARF CFI over a copy of the user stack: complete stacks through code
        /// without frame pointers.
        case dwarf
        /// The kernel's frame-pointer callchain: cheapest, but stops or goes
        /// wrong at the first function without a frame pointer.
        case fp
    }

    public var target: Target
    public var frequency: UInt64 = 99
    /// Seconds; nil records until the command or process exits, or Ctrl-C.
    public var duration: Double?
    public var callGraph: CallGraph = .dwarf
    /// Bytes of user stack copied per sample in DWARF mode.
    public var stackBytes: UInt32 = 16384
    /// Inlined calls as frames of their own.
    public var inlineFrames = true
    /// Label samples with the span their thread was serving (docs/context-abi.md).
    public var spanLabels = true
    /// Also label samples with the naive "newest entry" reader (benchmarks only).
    public var comparesNewestSpanReader = false
    /// Where debug files missing on the host are fetched from; nil: nowhere.
    public var debuginfod: DebuginfodFetcher.Settings?

    public init(target: Target, frequency: UInt64 = 99, duration: Double? = nil, callGraph: CallGraph = .dwarf, stackBytes: UInt32 = 16384) {
        self.target = target
        self.frequency = frequency
        self.duration = duration
        self.callGraph = callGraph
        self.stackBytes = stackBytes
    }
}

/// A finished recording: the profile and what the summary reports about it.
public struct RecordResult: Sendable {
    public struct ProcessSeen: Sendable {
        public var pid: Int32
        public var name: String
        public var samples: Int
    }

    public var profile: Profile
    public var samples: Int
    public var lostRecords: UInt64
    public var durationSeconds: Double
    public var frequency: UInt64
    public var processes: [ProcessSeen]
    /// The launched command's exit status, when Flare started one.
    public var commandExitStatus: Int32?
    /// Flare's own CPU time (user + system) for the whole recording.
    public var flareCPUSeconds: Double
    /// Files whose symbols could not be read, and why.
    public var unreadableFiles: [String: String]
    public var stopReason: String
    /// Samples whose stack ended in a truncation marker, by reason.
    public var truncatedStacks: [String: Int]
    /// Memory held by compiled unwind tables.
    public var unwindTableBytes: Int
    /// What the span reader did; nil when span labels were off.
    public var spanStatistics: SpanReadStatistics?
}

/// Runs a recording: opens the perf events, drains them until the target
/// exits, the duration passes or SIGINT/SIGTERM arrives, then assembles the profile.
public enum Recorder {
    public static func record(_ options: RecordOptions) throws(SamplerError) -> RecordResult {
        let stopSignals = try StopSignals()
        let started = Linux.monotonicNanos()
        let startedWall = Linux.wallClockNanos()
        let samplingOptions = SamplingOptions(frequency: options.frequency,
                                              userStackBytes: options.callGraph == .dwarf ? options.stackBytes : 0)

        var command: LaunchedCommand?
        let session: SamplingSession
        switch options.target {
        case .command(let arguments):
            // Validate the frequency before forking anything.
            guard options.frequency >= 1 && options.frequency <= Linux.maxSampleRate else {
                throw .frequencyOutOfRange(requested: options.frequency, maximum: Linux.maxSampleRate)
            }
            let launched = try LaunchedCommand(arguments)
            command = launched
            do {
                session = try SamplingSession(target: .command(launched), options: samplingOptions)
            } catch {
                launched.signal(SIGKILL)
                launched.reap(blocking: true)
                throw error
            }
            try launched.release()
        case .process(let pid):
            session = try SamplingSession(target: .process(pid), options: samplingOptions)
        case .system:
            session = try SamplingSession(target: .system, options: samplingOptions)
        }

        let symbolizer = Symbolizer(expandInlines: options.inlineFrames)
        symbolizer.debuginfod = options.debuginfod.map(DebuginfodFetcher.init)
        let unwindTables = UnwindTableCache()
        switch options.callGraph {
        case .dwarf:
            var pipeline = SamplePipeline(unwinder: DwarfUnwinder(cache: unwindTables), symbolizer: symbolizer)
            return try run(&pipeline, session: session, command: command, options: options, stopSignals: stopSignals,
                           started: started, startedWall: startedWall, symbolizer: symbolizer, unwindTables: unwindTables)
        case .fp:
            var pipeline = SamplePipeline(unwinder: FramePointerUnwinder(), symbolizer: symbolizer)
            return try run(&pipeline, session: session, command: command, options: options, stopSignals: stopSignals,
                           started: started, startedWall: startedWall, symbolizer: symbolizer, unwindTables: unwindTables)
        }
    }

    /// Drains the session into the pipeline until a stop condition, then builds the result.
    private static func run<U: StackUnwinder>(
        _ pipeline: inout SamplePipeline<U>, session: SamplingSession, command: LaunchedCommand?, options: RecordOptions,
        stopSignals: StopSignals, started: UInt64, startedWall: Int64, symbolizer: Symbolizer, unwindTables: UnwindTableCache
    ) throws(SamplerError) -> RecordResult {
        if options.spanLabels { pipeline.spans = SpanLabeler(comparesWithNewest: options.comparesNewestSpanReader) }
        let deadline = options.duration.map { started + UInt64($0 * 1e9) }
        var stopReason = "stopped"
        var pollFDs = session.pollDescriptors.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        pollFDs.append(pollfd(fd: stopSignals.fd, events: Int16(POLLIN), revents: 0))

        while true {
            // Span rings reach back only a few transitions, so with span labels on
            // the rings are drained every millisecond, from the first sample on.
            _ = poll(&pollFDs, nfds_t(pollFDs.count), pipeline.spans != nil ? 1 : 100)
            pipeline.consume(session.drain())
            if let signal = stopSignals.received() {
                stopReason = signal == SIGINT ? "interrupted" : "terminated"
                break
            }
            if let command, command.reap() {
                stopReason = "command exited"
                break
            }
            if case .process(let pid) = options.target, !Linux.processExists(pid) {
                stopReason = "process \(pid) exited"
                break
            }
            if let deadline, Linux.monotonicNanos() >= deadline {
                stopReason = "duration reached"
                break
            }
        }
        session.disable()
        pipeline.consume(session.drain(final: true))
        if let command, command.exitStatus == nil {
            // Recording ended first (duration or signal): the command ends with it.
            command.signal(SIGTERM)
            for _ in 0..<50 where !command.reap() { usleep(20_000) }
        }

        return result(of: pipeline, frequency: options.frequency, durationSeconds: Double(Linux.monotonicNanos() - started) / 1e9,
                      startedWall: startedWall, symbolizer: symbolizer, unwindTables: unwindTables, lostRecords: session.lostRecords,
                      commandExitStatus: command?.exitStatus, stopReason: stopReason)
    }

    /// Symbolizes what the pipeline counted and wraps it up with its statistics.
    static func result<U: StackUnwinder>(
        of pipeline: SamplePipeline<U>, frequency: UInt64, durationSeconds elapsed: Double, startedWall: Int64,
        symbolizer: Symbolizer, unwindTables: UnwindTableCache, lostRecords: UInt64, commandExitStatus: Int32?, stopReason: String
    ) -> RecordResult {
        let periodNanos = Int64(1_000_000_000 / max(frequency, 1))
        let spans = pipeline.spans
        func assemble() -> ProfileAssembler {
            var assembler = ProfileAssembler(registry: pipeline.registry, symbolizer: symbolizer, periodNanos: periodNanos,
                                             timeNanos: startedWall, durationNanos: Int64(elapsed * 1e9))
            assembler.add(pipeline.aggregator) { key in spans?.profileLabels(key.spans, pid: key.pid) ?? [] }
            spans?.addComments(to: &assembler.builder)
            return assembler
        }
        var assembler = assemble()
        // Naming asked debuginfod for the debug files missing here: wait for them (each fetch has its own deadline) and name again.
        if let fetcher = symbolizer.debuginfod {
            if fetcher.pending > 0 {
                printToStandardError("flare: fetching debug info for \(fetcher.pending) file\(fetcher.pending == 1 ? "" : "s") from debuginfod (\(fetcher.settings.urls))")
                _ = fetcher.waitUntilIdle(seconds: Double(fetcher.settings.timeoutSeconds * 3 + 2))
            }
            if symbolizer.adoptFetchedDebugInfo() > 0 { assembler = assemble() }
            let counts = fetcher.current
            if counts.misses + counts.refused > 0 {
                printToStandardError("flare: warning: debuginfod gave \(counts.fetched) of \(counts.fetched + counts.misses + counts.refused) debug files (\(counts.lastFailure)); those frames are named by file and offset: check the servers in DEBUGINFOD_URLS or upload the debug files to the store")
            }
        }

        let processes = pipeline.samplesByPid.map { pid, count in
            RecordResult.ProcessSeen(pid: pid, name: pipeline.processes.processes[pid]?.name ?? "?", samples: count)
        }.sorted { ($0.samples, $1.pid) > ($1.samples, $0.pid) }

        var unreadable = symbolizer.failures
        for (path, reason) in unwindTables.failures where unreadable[path] == nil { unreadable[path] = reason }
        return RecordResult(profile: assembler.profile, samples: pipeline.aggregator.sampleCount,
                            lostRecords: lostRecords, durationSeconds: elapsed, frequency: frequency,
                            processes: processes, commandExitStatus: commandExitStatus,
                            flareCPUSeconds: ownCPUSeconds(), unreadableFiles: unreadable, stopReason: stopReason,
                            truncatedStacks: pipeline.truncatedStacks, unwindTableBytes: unwindTables.memoryBytes,
                            spanStatistics: spans?.reader.statistics)
    }

    /// Progress and warnings while the summary is being made (stdout may be the profile).
    static func printToStandardError(_ line: String) {
        _ = (line + "\n").utf8CString.withUnsafeBufferPointer { write(STDERR_FILENO, $0.baseAddress, $0.count - 1) }
    }

    static func ownCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }
}

