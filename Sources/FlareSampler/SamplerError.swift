import Glibc

/// What can go wrong while setting up or running a sampling session, each
/// with a message that says what to do about it.
public enum SamplerError: Error, CustomStringConvertible, Equatable {
    case noSuchProcess(pid: Int32)
    case permissionDenied(errno: Int32, paranoid: String)
    case frequencyOutOfRange(requested: UInt64, maximum: UInt64)
    case commandNotFound(String)
    case commandNotExecutable(String)
    case execFailed(command: String, errno: Int32)
    case perfEventOpen(errno: Int32, target: String)
    case ringBuffer(errno: Int32, bytes: Int)
    case system(call: String, errno: Int32)

    public var description: String {
        switch self {
        case .noSuchProcess(let pid):
            return "no process with pid \(pid) (check the pid with `ps -p \(pid)`)"
        case .permissionDenied(_, let paranoid):
            return "no permission to use perf_event: /proc/sys/kernel/perf_event_paranoid is \(paranoid); "
                + "run as root, grant CAP_PERFMON (e.g. `setcap cap_perfmon,cap_sys_ptrace,cap_syslog+ep flare`), "
                + "or lower it with `sysctl kernel.perf_event_paranoid=1`"
        case .frequencyOutOfRange(let requested, let maximum):
            return "frequency \(requested) Hz is out of range: use 1 to \(maximum) Hz "
                + "(the limit is /proc/sys/kernel/perf_event_max_sample_rate)"
        case .commandNotFound(let command):
            return "command not found: \(command) (check the name or give a path)"
        case .commandNotExecutable(let command):
            return "command is not executable: \(command) (check its permissions: chmod +x)"
        case .execFailed(let command, let code):
            return "cannot run \(command): \(String(cString: strerror(code)))"
        case .perfEventOpen(let code, let target):
            return "perf_event_open for \(target) failed: \(String(cString: strerror(code)))"
        case .ringBuffer(let code, let bytes):
            return "cannot map a \(bytes / 1024) KiB perf ring buffer: \(String(cString: strerror(code))) "
                + "(raise /proc/sys/kernel/perf_event_mlock_kb or lower --mmap-pages)"
        case .system(let call, let code):
            return "\(call) failed: \(String(cString: strerror(code)))"
        }
    }
}
