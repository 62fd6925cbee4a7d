import CPerfEvent
import Glibc

/// A command started paused: its process exists (so perf events can be
/// attached to it) but it has not exec'd yet, so not one of its instructions
/// is missed.
public final class LaunchedCommand {
    public let pid: Int32
    public let arguments: [String]
    private var releaseFD: Int32
    private var errorFD: Int32
    public private(set) var exitStatus: Int32?

    /// Checks that the command can be run, then forks it paused.
    public init(_ arguments: [String]) throws(SamplerError) {
        guard let command = arguments.first, !command.isEmpty else { throw .commandNotFound("") }
        let path = try Self.resolve(command)
        self.arguments = arguments
        var cStrings: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { cStrings.forEach { free($0) } }
        var release: Int32 = -1
        var failure: Int32 = -1
        let child = cperf_spawn_paused(path, &cStrings, &release, &failure)
        guard child > 0 else { throw .system(call: "fork", errno: errno) }
        pid = child
        releaseFD = release
        errorFD = failure
    }

    deinit {
        if releaseFD >= 0 { close(releaseFD) }
        if errorFD >= 0 { close(errorFD) }
    }

    /// Lets the child exec; throws if the exec failed.
    public func release() throws(SamplerError) {
        var go: UInt8 = 1
        _ = write(releaseFD, &go, 1)
        close(releaseFD)
        releaseFD = -1
        var code: Int32 = 0
        let n = read(errorFD, &code, MemoryLayout<Int32>.size)
        close(errorFD)
        errorFD = -1
        if n == MemoryLayout<Int32>.size {
            _ = reap(blocking: true)
            throw .execFailed(command: arguments[0], errno: code)
        }
    }

    /// Collects the child's exit status once it has exited. Returns whether it has.
    @discardableResult
    public func reap(blocking: Bool = false) -> Bool {
        if exitStatus != nil { return true }
        var status: Int32 = 0
        let r = waitpid(pid, &status, blocking ? 0 : WNOHANG)
        guard r == pid else { return r < 0 && errno == ECHILD }
        // WIFEXITED / WEXITSTATUS are macros: decode by hand.
        exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return true
    }

    /// Sends a signal to the child (used when recording is interrupted).
    public func signal(_ sig: Int32) { if exitStatus == nil { kill(pid, sig) } }

    /// The path to exec: `command` itself if it has a slash, else its first
    /// executable match in PATH, as a shell would find it.
    private static func resolve(_ command: String) throws(SamplerError) -> String {
        if command.contains("/") {
            guard access(command, F_OK) == 0 else { throw .commandNotFound(command) }
            guard access(command, X_OK) == 0, !isDirectory(command) else { throw .commandNotExecutable(command) }
            return command
        }
        let path = String(cString: getenv("PATH") ?? strdup("/usr/local/bin:/usr/bin:/bin"))
        var foundNonExecutable = false
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(command)"
            if access(candidate, F_OK) == 0 && !isDirectory(candidate) {
                if access(candidate, X_OK) == 0 { return candidate }
                foundNonExecutable = true
            }
        }
        throw foundNonExecutable ? .commandNotExecutable(command) : .commandNotFound(command)
    }

    private static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }
}
