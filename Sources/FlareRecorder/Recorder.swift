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

    public var target: Target
    public var frequency: UInt64 = 99
    /// Seconds; nil records until the command or process exits, or Ctrl-C.
    public var duration: Double?
    /// Label samples with the span their thread was serving (docs/context-abi.md).
    public var spanLabels = true
    /// Also label samples with the naive "newest entry" reader (benchmarks only).
    public var comparesNewestSpanReader = false

    public init(target: Target, frequency: UInt64 = 99, duration: Double? = nil) {
        self.target = target
        self.frequency = frequency
        self.duration = duration
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
        let samplingOptions = SamplingOptions(frequency: options.frequency)

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

        let symbolizer = Symbolizer()
        var pipeline = SamplePipeline(unwinder: FramePointerUnwinder(), symbolizer: symbolizer)
        if options.spanLabels { pipeline.spans = SpanLabeler(comparesWithNewest: options.comparesNewestSpanReader) }
        let deadline = options.duration.map { started + UInt64($0 * 1e9) }
        var stopReason = "stopped"
        var pollFDs = session.pollDescriptors.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        pollFDs.append(pollfd(fd: stopSignals.fd, events: Int16(POLLIN), revents: 0))

        while true {
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

        let elapsed = Double(Linux.monotonicNanos() - started) / 1e9
        let periodNanos = Int64(1_000_000_000 / options.frequency)
        var assembler = ProfileAssembler(registry: pipeline.registry, symbolizer: symbolizer, periodNanos: periodNanos,
                                         timeNanos: startedWall, durationNanos: Int64(elapsed * 1e9))
        let spans = pipeline.spans
        assembler.add(pipeline.aggregator) { key in spans?.profileLabels(key.spans, pid: key.pid) ?? [] }
        spans?.addComments(to: &assembler.builder)

        let processes = pipeline.samplesByPid.map { pid, count in
            RecordResult.ProcessSeen(pid: pid, name: pipeline.processes.processes[pid]?.name ?? "?", samples: count)
        }.sorted { ($0.samples, $1.pid) > ($1.samples, $0.pid) }

        return RecordResult(profile: assembler.profile, samples: pipeline.aggregator.sampleCount,
                            lostRecords: session.lostRecords, durationSeconds: elapsed, frequency: options.frequency,
                            processes: processes, commandExitStatus: command?.exitStatus,
                            flareCPUSeconds: ownCPUSeconds(), unreadableFiles: symbolizer.failures, stopReason: stopReason,
                            spanStatistics: spans?.reader.statistics)
    }

    static func ownCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }
}

