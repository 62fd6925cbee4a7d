import Glibc

/// Output files are written whole or not at all: a temporary file beside the
/// target, then rename, so a failed or interrupted run leaves nothing half-written.
enum OutputFile {
    /// Fails early, before any recording, if the file could not be created.
    static func checkWritable(_ path: String) throws {
        let directory = parentDirectory(of: path)
        var info = stat()
        guard stat(directory, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw InputError(description: "cannot write \(path): directory \(directory) does not exist (create it first)")
        }
        guard access(directory, W_OK) == 0 else {
            throw InputError(description: "cannot write \(path): directory \(directory) is not writable")
        }
        if stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR {
            throw InputError(description: "cannot write \(path): it is a directory")
        }
    }

    static func writeAtomically(_ bytes: [UInt8], to path: String) throws(InputError) {
        let temporary = parentDirectory(of: path) + "/.flare-\(getpid())-" + (path.split(separator: "/").last.map(String.init) ?? "out")
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw InputError(description: "cannot create \(temporary): \(String(cString: strerror(errno)))") }
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let code = errno
                close(fd)
                unlink(temporary)
                throw InputError(description: "cannot write \(path): \(String(cString: strerror(code)))")
            }
            written += n
        }
        guard fsync(fd) == 0, close(fd) == 0 else {
            let code = errno
            unlink(temporary)
            throw InputError(description: "cannot write \(path): \(String(cString: strerror(code)))")
        }
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw InputError(description: "cannot write \(path): \(String(cString: strerror(code)))")
        }
    }

    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let directory = String(path[..<slash])
        return directory.isEmpty ? "/" : directory
    }
}

/// A problem with what the user asked for, told in one line.
struct InputError: Error, CustomStringConvertible {
    let description: String
}

/// stdout / stderr without Foundation.
enum StandardStream {
    case out, error

    func write(_ text: String) {
        let fd: Int32 = self == .out ? 1 : 2
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            offset += n
        }
    }
}
