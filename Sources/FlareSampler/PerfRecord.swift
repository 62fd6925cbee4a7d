/// One record from a perf ring buffer, decoded into value types.
public enum PerfRecord: Sendable {
    case sample(SampleRecord)
    case mmap(MmapRecord)
    case comm(CommRecord)
    case fork(TaskRecord)
    case exit(TaskRecord)
    /// The kernel dropped this many records because the ring was full.
    case lost(count: UInt64, time: UInt64)
    case throttle(time: UInt64)
    case other(type: UInt32, time: UInt64)

    public var time: UInt64 {
        switch self {
        case .sample(let s): s.time
        case .mmap(let m): m.time
        case .comm(let c): c.time
        case .fork(let t), .exit(let t): t.time
        case .lost(_, let time), .throttle(let time), .other(_, let time): time
        }
    }
}

/// A cpu-clock sample. Times are CLOCK_MONOTONIC nanoseconds.
public struct SampleRecord: Sendable {
    public var pid: Int32
    public var tid: Int32
    public var time: UInt64
    public var cpu: UInt32
    public var period: UInt64
    public var ip: UInt64
    /// The kernel's callchain, with PERF_CONTEXT_* markers left in.
    public var callchain: [UInt64]
    public var isKernelIP: Bool
    /// User registers at the sample, in `UserRegisters` order; empty when not
    /// captured (frame-pointer mode, or a kernel thread).
    public var userRegisters: [UInt64]
    /// A copy of the user stack from the sampled stack pointer upwards.
    public var userStack: [UInt8]

    public init(pid: Int32, tid: Int32, time: UInt64, cpu: UInt32, period: UInt64, ip: UInt64, callchain: [UInt64],
                isKernelIP: Bool, userRegisters: [UInt64] = [], userStack: [UInt8] = []) {
        self.pid = pid; self.tid = tid; self.time = time; self.cpu = cpu
        self.period = period; self.ip = ip; self.callchain = callchain; self.isKernelIP = isKernelIP
        self.userRegisters = userRegisters; self.userStack = userStack
    }
}

/// The x86-64 user registers Flare asks perf for (mask 0xff0fff: everything
/// but the segment registers, as perf itself does), and their index in
/// `SampleRecord.userRegisters`.
public enum UserRegisters {
    public static let mask: UInt64 = 0xff0fff
    public static let count = mask.nonzeroBitCount
    public static let bp = 6
    public static let sp = 7
    public static let ip = 8
    /// Index of perf register `perfIndex` (enum perf_event_x86_regs) in the array.
    public static func index(ofPerfRegister perfIndex: Int) -> Int? {
        guard mask & (1 << UInt64(perfIndex)) != 0 else { return nil }
        return (mask & ((1 << UInt64(perfIndex)) - 1)).nonzeroBitCount
    }
}

/// A new executable or file mapping (PERF_RECORD_MMAP2).
public struct MmapRecord: Sendable {
    public var pid: Int32
    public var tid: Int32
    public var start: UInt64
    public var length: UInt64
    public var fileOffset: UInt64
    public var inode: UInt64
    public var device: UInt64
    public var protection: UInt32
    public var buildID: [UInt8]?
    public var path: String
    public var time: UInt64
}

public struct CommRecord: Sendable {
    public var pid: Int32
    public var tid: Int32
    public var name: String
    /// The name changed because the process exec'd.
    public var isExec: Bool
    public var time: UInt64
}

public struct TaskRecord: Sendable {
    public var pid: Int32
    public var parentPid: Int32
    public var tid: Int32
    public var parentTid: Int32
    public var time: UInt64
}
