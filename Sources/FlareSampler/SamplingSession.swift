import CPerfEvent
import Glibc

/// What to sample.
public enum SamplingTarget {
    /// A command started by Flare, with its threads and the processes it forks.
    case command(LaunchedCommand)
    /// A running process and all its threads, present and future.
    case process(Int32)
    /// Every process on every CPU.
    case system
}

public struct SamplingOptions: Sendable {
    /// cpu-clock samples per second.
    public var frequency: UInt64 = 99
    /// Bytes of user stack copied with each sample for DWARF unwinding; 0
    /// captures neither registers nor stack (frame-pointer callchains only).
    public var userStackBytes: UInt32 = 0
    /// Data pages per CPU ring buffer (a power of two); nil picks one from the frequency.
    public var ringPages: Int?

    public static let maxUserStackBytes: UInt32 = 65528

    public init(frequency: UInt64 = 99, userStackBytes: UInt32 = 0, ringPages: Int? = nil) {
        self.frequency = frequency
        // The kernel wants a multiple of 8.
        self.userStackBytes = min(userStackBytes, Self.maxUserStackBytes) & ~7
        self.ringPages = ringPages
    }

    /// Enough room for about half a second of the deepest stacks (and stack
    /// copies) at the chosen rate, so a reader that drains every 100 ms loses nothing.
    var effectiveRingPages: Int {
        if let pages = ringPages { return pages }
        let bytesPerSample = 1100 + (userStackBytes > 0 ? Int(userStackBytes) + 200 : 0)
        let bytesPerHalfSecond = Int(frequency) * bytesPerSample / 2
        var pages = 128
        while pages * 4096 < bytesPerHalfSecond { pages *= 2 }
        return pages
    }
}

/// A set of perf events — one ring buffer per CPU — and the records they produce.
///
/// Records from different CPUs reach us out of order; `drain` merges them by
/// timestamp and holds back the ones newer than the moment the drain began,
/// since an older record may still be in flight on another CPU.
public final class SamplingSession {
    public let options: SamplingOptions
    private var fds: [Int32] = []
    private var rings: [RingBuffer] = []
    private var pending: [PerfRecord] = []
    private let parser: PerfRecordParser
    /// Records the kernel could not write because a ring was full.
    public private(set) var lostRecords: UInt64 = 0

    public init(target: SamplingTarget, options: SamplingOptions) throws(SamplerError) {
        self.options = options
        let maximum = Linux.maxSampleRate
        guard options.frequency >= 1 && options.frequency <= maximum else {
            throw .frequencyOutOfRange(requested: options.frequency, maximum: maximum)
        }
        var config = cperf_options()
        config.frequency = options.frequency
        config.sample_type = PerfRecordParser.baseSampleType
        if options.userStackBytes > 0 {
            config.sample_type |= PerfRecordParser.stackSampleType
            config.sample_regs_user = UserRegisters.mask
            config.sample_stack_user = options.userStackBytes
        }
        parser = PerfRecordParser(capturesStacks: options.userStackBytes > 0)
        config.sample_max_stack = 127
        config.track_tasks = 1
        config.wakeup_watermark = UInt32(options.effectiveRingPages * 4096 / 2)
        config.disabled = 1
        let cpus = Linux.onlineCPUs()
        do throws(SamplerError) {
            switch target {
            case .system:
                for cpu in cpus {
                    try open(config, pid: -1, cpu: cpu, cpuIndex: cpu, describe: "all processes on CPU \(cpu)")
                }
            case .command(let command):
                config.inherit = 1
                config.enable_on_exec = 1
                for cpu in cpus {
                    try open(config, pid: command.pid, cpu: cpu, cpuIndex: cpu, describe: "command \(command.arguments[0])")
                }
            case .process(let pid):
                guard Linux.processExists(pid) else { throw .noSuchProcess(pid: pid) }
                config.inherit = 1
                var attached = Set<Int32>()
                // A second pass catches threads created while the first was attaching.
                for _ in 0..<2 {
                    for tid in Linux.threads(of: pid) where !attached.contains(tid) {
                        attached.insert(tid)
                        for cpu in cpus {
                            do {
                                try open(config, pid: tid, cpu: cpu, cpuIndex: cpu, describe: "pid \(pid)")
                            } catch .perfEventOpen(errno: ESRCH, _) {
                                break  // that thread exited meanwhile
                            }
                        }
                    }
                }
                guard !fds.isEmpty else { throw .noSuchProcess(pid: pid) }
            }
        } catch {
            fds.forEach { close($0) }
            throw error
        }
        if case .command = target {
            // enable_on_exec starts them at the exec.
        } else {
            fds.forEach { _ = cperf_enable($0) }
        }
    }

    deinit { fds.forEach { close($0) } }

    /// Ring buffer per CPU: the first event on a CPU owns it, later ones write into it.
    private var ringOwnerByCPU: [Int32: Int32] = [:]

    private func open(_ config: cperf_options, pid: Int32, cpu: Int32, cpuIndex: Int32, describe: String) throws(SamplerError) {
        var config = config
        let fd = cperf_open(&config, pid, cpu, -1)
        guard fd >= 0 else {
            let code = errno
            switch code {
            case EACCES, EPERM: throw .permissionDenied(errno: code, paranoid: Linux.perfEventParanoid)
            case ESRCH where pid > 0 && !Linux.processExists(pid): throw .noSuchProcess(pid: pid)
            default: throw .perfEventOpen(errno: code, target: describe)
            }
        }
        fds.append(fd)
        if let owner = ringOwnerByCPU[cpuIndex] {
            guard cperf_set_output(fd, owner) == 0 else { throw .system(call: "PERF_EVENT_IOC_SET_OUTPUT", errno: errno) }
        } else {
            rings.append(try RingBuffer(fd: fd, dataPages: options.effectiveRingPages))
            ringOwnerByCPU[cpuIndex] = fd
        }
    }

    /// The descriptors that become readable when a ring passes its watermark.
    public var pollDescriptors: [Int32] { Array(ringOwnerByCPU.values) }

    /// Stops sampling; records already in the rings can still be drained.
    public func disable() { fds.forEach { _ = cperf_disable($0) } }

    /// Reads every ring and returns the records ready to process, in time order.
    /// - Parameter final: return everything, holding nothing back.
    public func drain(final: Bool = false) -> [PerfRecord] {
        let cutoff = Linux.monotonicNanos()
        var batch = pending
        pending = []
        for ring in rings {
            ring.drain { bytes in
                guard let record = parser.parse(bytes) else { return }
                if case .lost(let count, _) = record { lostRecords += count }
                batch.append(record)
            }
        }
        // Stable: records with equal times keep their ring order.
        batch = batch.enumerated().sorted { ($0.element.time, $0.offset) < ($1.element.time, $1.offset) }.map(\.element)
        if final { return batch }
        let ready = batch.prefix { $0.time <= cutoff }
        pending = Array(batch[ready.count...])
        return Array(ready)
    }
}
