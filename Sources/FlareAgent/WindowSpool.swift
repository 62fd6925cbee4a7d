import CZlib
import Foundation
import NIOConcurrencyHelpers

/// What travels with a window's profile: enough to upload it again after a restart.
public struct WindowMetadata: Codable, Sendable, Equatable {
    /// Unique per host, service and window; the store keeps one copy per id.
    public var windowID: String
    public var service: String
    public var labels: [String: String]
    public var startNanos: Int64
    public var endNanos: Int64
    public var samples: Int
}

/// A spooled window: where it lies on disk and what it holds.
public struct SpooledWindow: Sendable {
    public var path: String
    public var sequence: UInt64
    public var metadata: WindowMetadata
    public var payload: [UInt8]
}

/// Windows on disk until every destination has acknowledged them, so that a
/// store outage or an agent restart loses nothing. One directory per
/// destination; one file per window, written whole (temporary file, fsync,
/// rename) and checked on read (magic, lengths, CRC-32), oldest first.
/// Bounded in bytes: beyond the bound the oldest windows are dropped and counted.
public final class WindowSpool: Sendable {
    public let directory: String
    public let destinations: [String]
    public let maxBytes: Int
    private let state: NIOLockedValueBox<State>

    private struct State {
        var nextSequence: UInt64 = 1
        var bytes = 0
        var dropped = 0
        var setAside = 0
    }

    static let magic = Array("FLSPOOL1".utf8)
    static let suffix = ".window"

    /// Opens (creating) the spool and counts what earlier runs left in it.
    public init(directory: String, destinations: [String], maxBytes: Int) throws(ConfigurationError) {
        self.directory = directory
        self.destinations = destinations
        self.maxBytes = maxBytes
        var state = State()
        for destination in destinations {
            let dir = directory + "/" + destination
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            } catch {
                throw ConfigurationError("shipping.spool_dir: cannot create \(dir): \(error.localizedDescription); choose a writable directory")
            }
            guard access(dir, W_OK) == 0 else {
                throw ConfigurationError("shipping.spool_dir: \(dir) is not writable; choose a writable directory")
            }
            for (sequence, path) in Self.listing(dir) {
                state.nextSequence = max(state.nextSequence, sequence + 1)
                state.bytes += Self.fileSize(path)
            }
        }
        self.state = NIOLockedValueBox(state)
    }

    public var bytes: Int { state.withLockedValue { $0.bytes } }
    public var droppedWindows: Int { state.withLockedValue { $0.dropped } }
    public var setAsideFiles: Int { state.withLockedValue { $0.setAside } }

    /// Writes a window for every destination. Oldest windows make room when
    /// the spool would exceed its bound.
    /// - Returns: how many old windows were dropped to make room.
    @discardableResult
    public func add(_ metadata: WindowMetadata, payload: [UInt8]) throws -> Int {
        let file = try Self.encode(metadata, payload: payload)
        let sequence = state.withLockedValue { s in
            defer { s.nextSequence += 1 }
            return s.nextSequence
        }
        var dropped = 0
        for destination in destinations {
            dropped += makeRoom(for: file.count)
            let dir = directory + "/" + destination
            let name = String(format: "%020llu", sequence) + Self.suffix
            try Self.writeDurably(file, to: dir + "/" + name, directory: dir)
            state.withLockedValue { $0.bytes += file.count }
        }
        return dropped
    }

    /// The oldest pending window for a destination, skipping (and setting
    /// aside) files that are truncated or corrupt.
    /// - Parameter warn: told about each file set aside.
    public func oldest(for destination: String, warn: (String) -> Void) -> SpooledWindow? {
        let dir = directory + "/" + destination
        for (sequence, path) in Self.listing(dir) {
            switch Self.read(path) {
            case .success(let (metadata, payload)):
                return SpooledWindow(path: path, sequence: sequence, metadata: metadata, payload: payload)
            case .failure(let problem):
                setAside(path, reason: problem.reason, warn: warn)
            }
        }
        return nil
    }

    /// Pending windows for a destination.
    public func count(for destination: String) -> Int { Self.listing(directory + "/" + destination).count }

    /// The destination acknowledged the window (or rejected it for good).
    public func remove(_ window: SpooledWindow) {
        let size = Self.fileSize(window.path)
        if unlink(window.path) == 0 { state.withLockedValue { $0.bytes -= size } }
    }

    /// Moves a file that cannot be uploaded into `DIR/set-aside/`, keeping it for a human.
    public func setAside(_ path: String, reason: String, warn: (String) -> Void) {
        let aside = directory + "/set-aside"
        try? FileManager.default.createDirectory(atPath: aside, withIntermediateDirectories: true)
        let size = Self.fileSize(path)
        let components = path.split(separator: "/")
        let target = aside + "/" + components.suffix(2).joined(separator: "-")
        if rename(path, target) == 0 || unlink(path) == 0 {
            state.withLockedValue { $0.bytes -= size; $0.setAside += 1 }
        }
        warn("spool file \(path) set aside as \(target): \(reason)")
    }

    private func makeRoom(for size: Int) -> Int {
        var dropped = 0
        while state.withLockedValue({ $0.bytes + size > maxBytes }) {
            // The oldest file across destinations goes first.
            let oldest = destinations.compactMap { d in Self.listing(directory + "/" + d).first }.min { $0.0 < $1.0 }
            guard let (_, path) = oldest else { break }
            let removed = Self.fileSize(path)
            guard unlink(path) == 0 else { break }
            state.withLockedValue { $0.bytes -= removed; $0.dropped += 1 }
            dropped += 1
        }
        return dropped
    }

    // MARK: File format: magic, u32 metadata length, JSON metadata, u32 payload length, payload, u32 CRC-32 of all before.

    static func encode(_ metadata: WindowMetadata, payload: [UInt8]) throws -> [UInt8] {
        let json = Array(try JSONEncoder().encode(metadata))
        var bytes = magic
        appendUInt32(UInt32(json.count), to: &bytes)
        bytes += json
        appendUInt32(UInt32(payload.count), to: &bytes)
        bytes += payload
        appendUInt32(crc32(bytes), to: &bytes)
        return bytes
    }

    struct FileProblem: Error { var reason: String }

    static func read(_ path: String) -> Result<(WindowMetadata, [UInt8]), FileProblem> {
        guard let data = FileManager.default.contents(atPath: path) else { return .failure(FileProblem(reason: "cannot be read")) }
        let bytes = [UInt8](data)
        guard bytes.count >= magic.count + 12, Array(bytes[0..<magic.count]) == magic else { return .failure(FileProblem(reason: "not a spooled window (bad header)")) }
        var offset = magic.count
        let metadataLength = Int(readUInt32(bytes, at: offset)); offset += 4
        guard metadataLength <= bytes.count - offset - 8 else { return .failure(FileProblem(reason: "truncated (metadata)")) }
        let json = bytes[offset..<offset + metadataLength]; offset += metadataLength
        let payloadLength = Int(readUInt32(bytes, at: offset)); offset += 4
        guard payloadLength <= bytes.count - offset - 4 else { return .failure(FileProblem(reason: "truncated (profile)")) }
        let payload = Array(bytes[offset..<offset + payloadLength]); offset += payloadLength
        guard offset + 4 == bytes.count else { return .failure(FileProblem(reason: "unexpected trailing bytes")) }
        guard readUInt32(bytes, at: offset) == crc32(Array(bytes[0..<offset])) else { return .failure(FileProblem(reason: "checksum mismatch (corrupt)")) }
        guard let metadata = try? JSONDecoder().decode(WindowMetadata.self, from: Data(json)) else { return .failure(FileProblem(reason: "unreadable metadata")) }
        return .success((metadata, payload))
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBufferPointer { UInt32(CZlib.crc32(0, $0.baseAddress, uInt($0.count))) }
    }

    static func appendUInt32(_ v: UInt32, to bytes: inout [UInt8]) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(shift))) }
    }

    static func readUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(bytes[offset + $1]) << UInt32(8 * $1) }
    }

    /// Spooled files by sequence number, oldest first. Temporary files are ignored.
    static func listing(_ dir: String) -> [(UInt64, String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.compactMap { name -> (UInt64, String)? in
            guard name.hasSuffix(suffix), let sequence = UInt64(name.dropLast(suffix.count)) else { return nil }
            return (sequence, dir + "/" + name)
        }.sorted { $0.0 < $1.0 }
    }

    static func fileSize(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : 0
    }

    /// Temporary file, fsync, rename, fsync of the directory: after a crash
    /// the window is either whole or absent.
    static func writeDurably(_ bytes: [UInt8], to path: String, directory: String) throws {
        let temporary = directory + "/.tmp-" + (path.split(separator: "/").last.map(String.init) ?? "window")
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SpoolError(path: temporary, errno: errno) }
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                let code = errno
                close(fd)
                unlink(temporary)
                throw SpoolError(path: temporary, errno: code)
            }
            written += n
        }
        guard fsync(fd) == 0 else {
            let code = errno
            close(fd)
            unlink(temporary)
            throw SpoolError(path: temporary, errno: code)
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw SpoolError(path: path, errno: code)
        }
        let dirFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 { fsync(dirFD); close(dirFD) }
    }
}

/// Writing a window to the spool failed (a full disk, most likely).
public struct SpoolError: Error, CustomStringConvertible {
    public var path: String
    public var errno: Int32
    public var description: String {
        "cannot write \(path): \(String(cString: strerror(errno)))" + (errno == ENOSPC ? " (the disk is full: free space or lower shipping.spool_max_bytes)" : "")
    }
}
