import CTargetFiles
import Glibc

/// Opens the files a profiled process names (its executables and libraries,
/// their debug links, its perf maps) as docs/security.md asks: every byte of
/// such a path is the target's choice, and the agent reading it runs as root.
///
/// - Paths under `/proc/PID/root/` are resolved inside that root
///   (`openat2` with `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`): an absolute
///   symlink in a container's root stays in the container.
/// - Paths in a trusted directory (`beneath:`) cannot leave it.
/// - Every open is `O_NONBLOCK | O_NOCTTY | O_CLOEXEC`, and only regular
///   files are kept (`fstat`): a FIFO, a device or a directory is refused
///   before a byte is read, so nothing a target names can block the reader.
/// - With the target's credentials, a file its user could not read is refused,
///   so the agent never shows what the target itself could not see.
public enum TargetFiles {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public struct Options: Sendable {
        /// Larger files are refused.
        public var maxBytes: Int64?
        /// Refuse a path with any symlink in it (perf maps are plain files in /tmp).
        public var noSymlinks = false
        /// The target's user: files it could not read are refused.
        public var credentials: TargetCredentials?
        /// A trusted directory the path must resolve beneath (debug directories).
        public var beneath: String?

        public init(maxBytes: Int64? = nil, noSymlinks: Bool = false, credentials: TargetCredentials? = nil, beneath: String? = nil) {
            self.maxBytes = maxBytes
            self.noSymlinks = noSymlinks
            self.credentials = credentials
            self.beneath = beneath
        }
    }

    /// An open regular file; the caller closes `fd`.
    public struct Opened: Sendable {
        public let fd: Int32
        public let size: Int64
        public let owner: UInt32
        public let mode: UInt32
    }

    static let openFlags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC

    /// Opens `path` for reading under `options`' rules.
    public static func open(_ path: String, _ options: Options = Options()) -> Result<Opened, Failure> {
        let fd: Int32
        switch descriptor(path, options) {
        case .success(let value): fd = value
        case .failure(let failure): return .failure(failure)
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let failure = Failure(description: "\(path): \(String(cString: strerror(errno)))")
            close(fd)
            return .failure(failure)
        }
        func refuse(_ why: String) -> Result<Opened, Failure> {
            close(fd)
            return .failure(Failure(description: "\(path): \(why)"))
        }
        guard info.st_mode & S_IFMT == S_IFREG else { return refuse("not a regular file") }
        if let limit = options.maxBytes, Int64(info.st_size) > limit { return refuse("larger than \(limit) bytes") }
        // A /proc/PID/map_files alias is the very file the process maps: the
        // kernel granted it, whoever owns it.
        if let credentials = options.credentials, !isMapFilesAlias(path),
           !credentials.mayRead(owner: info.st_uid, group: info.st_gid, mode: UInt32(info.st_mode)) {
            return refuse("not readable by the profiled process's user (uid \(credentials.uid))")
        }
        return .success(Opened(fd: fd, size: Int64(info.st_size), owner: info.st_uid, mode: UInt32(info.st_mode)))
    }

    /// Reads at most `count` bytes of an open file from its start (fewer if it is shorter).
    public static func read(fd: Int32, count: Int) -> [UInt8] {
        let wanted = max(count, 0)
        var bytes = [UInt8](repeating: 0, count: wanted)
        var done = 0
        while done < wanted {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, wanted - done, off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            done += n
        }
        bytes.removeLast(wanted - done)
        return bytes
    }

    /// `/proc/PID/root` and the rest of a path under it, if it is one.
    public static func splitProcessRoot(_ path: String) -> (root: String, rest: String)? {
        let parts = path.utf8.split(separator: UInt8(ascii: "/"), maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0].isEmpty, String(parts[1]) == "proc", !parts[2].isEmpty,
              parts[2].allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              parts[3].starts(with: "root/".utf8)
        else { return nil }
        let root = "/proc/\(String(parts[2])!)/root"
        return (root, String(path.dropFirst(root.count + 1)))
    }

    public static func isMapFilesAlias(_ path: String) -> Bool {
        path.hasPrefix("/proc/") && path.contains("/map_files/")
    }

    private static func descriptor(_ path: String, _ options: Options) -> Result<Int32, Failure> {
        let symlinks = options.noSymlinks ? ctargetfiles_resolve_no_symlinks : 0
        if let directory = options.beneath {
            let relative = path.hasPrefix(directory + "/") ? String(path.dropFirst(directory.count + 1)) : path
            return openAt(directory, relative, resolve: ctargetfiles_resolve_beneath | ctargetfiles_resolve_no_magiclinks | symlinks, shownAs: path)
        }
        if let (root, rest) = splitProcessRoot(path) {
            return openAt(root, rest, resolve: ctargetfiles_resolve_in_root | ctargetfiles_resolve_no_magiclinks | symlinks, shownAs: path)
        }
        let fd = Glibc.open(path, openFlags | (options.noSymlinks ? O_NOFOLLOW : 0))
        guard fd >= 0 else { return .failure(Failure(description: "\(path): \(String(cString: strerror(errno)))")) }
        return .success(fd)
    }

    private static func openAt(_ directory: String, _ relative: String, resolve: UInt64, shownAs path: String) -> Result<Int32, Failure> {
        let dirFD = Glibc.open(directory, ctargetfiles_o_path | O_DIRECTORY | O_CLOEXEC)
        guard dirFD >= 0 else { return .failure(Failure(description: "\(path): \(String(cString: strerror(errno)))")) }
        defer { close(dirFD) }
        let fd = ctargetfiles_openat2(dirFD, relative, UInt64(openFlags), resolve)
        guard fd >= 0 else {
            let reason = fd == -ENOSYS ? "this kernel has no openat2 (Linux 5.6+): not opened" : String(cString: strerror(Int32(-fd)))
            return .failure(Failure(description: "\(path): \(reason)"))
        }
        return .success(fd)
    }
}
