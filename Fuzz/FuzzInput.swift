import Glibc

/// One fuzz target: bytes in, nothing out. A trap, an AddressSanitizer report
/// or a failed `FuzzCheck.require` is the finding; a thrown error or a nil is
/// the parser doing its job.
protocol FuzzTarget {
    /// The name `scripts/fuzz` and `Fuzz/corpus/` use.
    static var name: String { get }
    static func run(_ data: UnsafeRawBufferPointer)
}

/// Invariants the targets check beyond "does not crash".
enum FuzzCheck {
    /// Stops the process with `message` when `condition` is false: libFuzzer
    /// then saves the input, as for any crash.
    static func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
        guard !condition() else { return }
        FuzzCheck.printError("invariant broken: \(message())")
        abort()
    }

    static func printError(_ line: String) {
        var text = line + "\n"
        text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }
}

/// Little-endian loads that answer 0 past the end: how targets carve their
/// input into parameters without rejecting short inputs.
struct FuzzBytes {
    let bytes: UnsafeRawBufferPointer

    func u8(_ offset: Int) -> UInt8 { offset >= 0 && offset < bytes.count ? bytes[offset] : 0 }

    func u32(_ offset: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(u8(offset + $1)) << (8 * UInt32($1)) }
    }

    func u64(_ offset: Int) -> UInt64 {
        (0..<8).reduce(0) { $0 | UInt64(u8(offset + $1)) << (8 * UInt64($1)) }
    }

    /// libelf's own test for ELF_K_ELF (elf_begin.c, determine_kind).
    var looksLikeELF: Bool {
        bytes.count >= 16 && u32(0) == 0x464c_457f && (1...2).contains(u8(4)) && (1...2).contains(u8(5)) && u8(6) == 1
    }

    /// `bytes[offset..<offset + count]`, cut to what exists (possibly empty).
    func slice(_ offset: Int, _ count: Int) -> UnsafeRawBufferPointer {
        let start = min(max(offset, 0), bytes.count)
        let end = min(start + max(count, 0), bytes.count)
        return UnsafeRawBufferPointer(rebasing: bytes[start..<end])
    }
}

/// An unlinked temporary file that holds the current input, for parsers that
/// open a path: `path` (/proc/self/fd/N) reaches it while the process lives.
final class FuzzInputFile {
    let path: String
    private let fd: Int32

    init(_ name: String) {
        // tmpfs when there is one: rewriting a file on a disk file system for
        // every input costs more than most parsers.
        let directory = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(directory)/flare-fuzz-\(name)-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        FuzzCheck.require(fd >= 0, "cannot create a temporary file in \(directory): \(String(cString: strerror(errno)))")
        unlink(template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        self.fd = fd
        path = "/proc/self/fd/\(fd)"
    }

    /// Replaces the file's contents with `data`.
    func write(_ data: UnsafeRawBufferPointer) {
        FuzzCheck.require(ftruncate(fd, 0) == 0, "ftruncate: \(String(cString: strerror(errno)))")
        var done = 0
        while done < data.count {
            let n = pwrite(fd, data.baseAddress! + done, data.count - done, off_t(done))
            FuzzCheck.require(n > 0, "pwrite: \(String(cString: strerror(errno)))")
            done += n
        }
    }
}
