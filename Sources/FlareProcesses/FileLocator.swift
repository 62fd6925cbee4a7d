/// Where to open the file behind a mapping.
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
        return [
            "/proc/\(pid)/map_files/\(String(mapping.start, radix: 16))-\(String(mapping.end, radix: 16))",
            "/proc/\(pid)/root\(path)",
            path,
        ]
    }
}
