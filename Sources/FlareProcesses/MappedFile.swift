/// An executable mapping of a file (or anonymous memory) in one process.
public struct MappedFile: Sendable, Equatable {
    public var start: UInt64
    public var end: UInt64
    /// File offset of `start`.
    public var fileOffset: UInt64
    public var path: String
    public var inode: UInt64
    public var device: UInt64
    public var buildID: [UInt8]?

    /// What identifies the file's contents across processes: its build-id when
    /// perf reported one, else device, inode and path. Computed once: it keys
    /// the caches every sampled frame goes through.
    public let identity: String

    public init(start: UInt64, end: UInt64, fileOffset: UInt64, path: String, inode: UInt64 = 0, device: UInt64 = 0, buildID: [UInt8]? = nil) {
        self.start = start; self.end = end; self.fileOffset = fileOffset; self.path = path
        self.inode = inode; self.device = device; self.buildID = buildID
        identity = Self.identity(path: path, inode: inode, device: device, buildID: buildID)
        let probe = Probe(path: path)
        isFileBacked = probe.isFileBacked
        isAnonymous = probe.isAnonymous
    }

    /// Whether the mapping is backed by a file we could open, rather than
    /// anonymous memory, the stack, the vdso or a JIT area.
    public let isFileBacked: Bool

    /// Anonymous memory: no name in /proc/PID/maps, "//anon" in perf's MMAP2
    /// records, or a name given with PR_SET_VMA_ANON_NAME.
    public let isAnonymous: Bool

    /// The file offset that `address` corresponds to.
    public func fileOffset(of address: UInt64) -> UInt64 { address - start + fileOffset }

    /// The path without the " (deleted)" the kernel appends to unlinked files.
    public var filePath: String { Probe(path: path).filePath }

    private static func identity(path: String, inode: UInt64, device: UInt64, buildID: [UInt8]?) -> String {
        if let buildID { return "b:" + buildID.map { String($0, radix: 16) }.joined() }
        let probe = MappedFile.Probe(path: path)
        if probe.isFileBacked { return "f:\(device):\(inode):\(probe.filePath)" }
        return "a:" + (path.isEmpty ? "[anon]" : path)
    }

    /// The path tests, usable before the struct is complete.
    private struct Probe {
        let path: String
        var isAnonymous: Bool {
            path.isEmpty || path.hasPrefix("//anon") || path.hasPrefix("/anon_hugepage") || path.hasPrefix("[anon")
        }
        var isFileBacked: Bool { path.hasPrefix("/") && !isAnonymous && !path.hasPrefix("/memfd:") && !path.hasPrefix("/dev/") }
        var filePath: String { path.hasSuffix(" (deleted)") ? String(path.dropLast(10)) : path }
    }

    /// The short name shown for a frame no symbol covers (`libfoo.so`).
    public var displayName: String {
        let base = path.split(separator: "/").last.map(String.init) ?? path
        return base.hasSuffix(" (deleted)") ? String(base.dropLast(10)) : base
    }
}

extension MappedFile {
    /// Parses one line of /proc/PID/maps; nil for non-executable mappings.
    /// `55d0c8e0c000-55d0c8e2e000 r-xp 00002000 fd:01 1835023   /usr/bin/bash`
    public init?(procMapsLine line: Substring) {
        let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
        guard fields.count >= 5, fields[1].count >= 3, Array(fields[1])[2] == "x" else { return nil }
        let range = fields[0].split(separator: "-")
        guard range.count == 2, let start = UInt64(range[0], radix: 16), let end = UInt64(range[1], radix: 16),
              let offset = UInt64(fields[2], radix: 16), let inode = UInt64(fields[4]) else { return nil }
        let dev = fields[3].split(separator: ":").compactMap { UInt64($0, radix: 16) }
        let path = fields.count > 5 ? String(fields[5]).trimmingCharacters() : ""
        self.init(start: start, end: end, fileOffset: offset, path: path, inode: inode,
                  device: dev.count == 2 ? dev[0] << 32 | dev[1] : 0)
    }
}

extension String {
    fileprivate func trimmingCharacters() -> String {
        var s = Substring(self)
        while let c = s.first, c == " " { s.removeFirst() }
        while let c = s.last, c == " " || c == "\n" { s.removeLast() }
        return String(s)
    }
}
