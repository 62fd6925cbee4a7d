import CTargetFiles

/// Mappings of target files that outlive the file being truncated: a process
/// may shorten a file it owns while the agent has it mapped, and a read past
/// the new end would otherwise end the agent with SIGBUS. A guarded range
/// reads as zeros there instead (`CTargetFiles.h`), which the parsers take
/// for any other malformed file.
public enum TruncationGuard {
    /// Guards `count` bytes from `start`; nil when no slot was free (the
    /// range is then unguarded) or the handler could not be installed.
    public static func guardMapping(_ start: UnsafeRawPointer, count: Int) -> Int32? {
        let slot = ctargetfiles_guard_add(start, UInt64(count))
        return slot >= 0 ? slot : nil
    }

    /// Stops guarding a range; call before it is unmapped.
    public static func release(_ slot: Int32) {
        ctargetfiles_guard_remove(slot)
    }

    /// Pages of truncated files read as zeros so far.
    public static var faults: UInt64 { ctargetfiles_guard_faults() }
}
