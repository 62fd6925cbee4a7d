import FlareTargetFiles
import Glibc

/// Where to open the file behind a mapping, and under which rules.
public struct FileLocator: Sendable {
    /// A directory that mirrors the filesystem the samples came from (like
    /// perf's --symfs); nil reads the live filesystem.
    public let symfs: String?
    /// Whether the sampled processes are running on this machine now.
    public let live: Bool

    /// Live processes: through /proc/PID/map_files (works even after the file
    /// was deleted or replaced, while the process lives), through the
    /// process's root (containers), then the path itself.
    public static let live = FileLocator(symfs: nil, live: true)

    /// Recorded samples replayed later: the processes are gone (their pids may
    /// belong to others now), so only paths are used.
    public static func offline(symfs: String?) -> FileLocator { FileLocator(symfs: symfs, live: false) }

    /// Paths to try, best first.
    public func candidates(for mapping: MappedFile, pid: Int32) -> [String] {
        let path = mapping.filePath
        if let symfs { return [symfs + path, path] }
        guard live else { return [path] }
        let inProcess = [
            "/proc/\(pid)/map_files/\(String(mapping.start, radix: 16))-\(String(mapping.end, radix: 16))",
            "/proc/\(pid)/root\(path)",
        ]
        // The path itself names a file of this machine's root: only for a
        // process that shares it (or is gone, whose files are then opened
        // with an unprivileged user's rights, see `rules`).
        return Self.sharesRoot(pid) == false ? inProcess : inProcess + [path]
    }

    /// The rules a file opened on behalf of process `pid` is opened under:
    /// live, with the process's credentials (an unprivileged user's once it is
    /// gone), so nothing its own user could not read is read; offline, none
    /// (the user chose the files).
    public func rules(pid: Int32) -> TargetFiles.Options {
        guard live, symfs == nil else { return TargetFiles.Options() }
        return TargetFiles.Options(credentials: TargetCredentials.of(pid: pid) ?? .nobody)
    }

    /// Whether process `pid` sees this machine's root at `/` (same mount
    /// namespace and root directory); nil once it is gone.
    static func sharesRoot(_ pid: Int32) -> Bool? {
        var theirs = stat(), ours = stat()
        guard stat("/proc/\(pid)/root/", &theirs) == 0, stat("/", &ours) == 0 else { return nil }
        return theirs.st_dev == ours.st_dev && theirs.st_ino == ours.st_ino && mountNamespace("/proc/\(pid)") == mountNamespace("/proc/self")
    }

    private static func mountNamespace(_ process: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 64)
        let n = readlink("\(process)/ns/mnt", &buffer, buffer.count - 1)
        return n > 0 ? String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
    }
}
