import CRemoteMemory
import Glibc

/// Copies bytes out of another process (process_vm_readv). Needs
/// PTRACE_MODE_ATTACH rights over the target: root or CAP_SYS_PTRACE.
enum RemoteMemory {
    enum Failure: Error, Equatable {
        /// A system call error (ESRCH: the process exited; EPERM: no rights).
        case errno(Int32)
        /// Part of the range is not mapped (any more).
        case short
    }

    /// Fills `buffer` from `address` in `pid`.
    static func read(pid: Int32, address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Result<Void, Failure> {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return .success(()) }
        let n = cremotememory_read(pid, base, buffer.count, address)
        if n < 0 { return .failure(.errno(Int32(-n))) }
        return n == buffer.count ? .success(()) : .failure(.short)
    }

    /// Copies `length` bytes from each address into consecutive parts of `buffer`.
    static func readMany(pid: Int32, addresses: [UInt64], length: Int, into buffer: UnsafeMutableRawBufferPointer) -> Result<Void, Failure> {
        precondition(buffer.count >= addresses.count * length)
        guard let base = buffer.baseAddress, !addresses.isEmpty else { return .success(()) }
        let n = addresses.withUnsafeBufferPointer { cremotememory_read_many(pid, base, $0.baseAddress, $0.count, length) }
        if n < 0 { return .failure(.errno(Int32(-n))) }
        return n == addresses.count * length ? .success(()) : .failure(.short)
    }
}
