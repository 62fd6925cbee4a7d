import ArgumentParser
import CDebuginfod
import FlareAgent
import FlareSymbols
import Foundation
import Glibc

/// `$DEBUGINFOD_URLS`, taken out of Flare's own environment before anything
/// else runs: libdw would otherwise ask those servers from inside an unwind,
/// on the thread that drains samples. Flare gives the servers to its
/// debuginfod helper process only (DebuginfodFetcher).
enum DebuginfodEnvironment {
    nonisolated(unsafe) static var inheritedURLs: String?

    static func takeFromProcess() {
        guard let value = getenv("DEBUGINFOD_URLS") else { return }
        let urls = String(cString: value)
        unsetenv("DEBUGINFOD_URLS")
        inheritedURLs = urls.trimmingCharacters(in: .whitespaces).isEmpty ? nil : urls
        AgentConfiguration.inheritedDebuginfodURLs = inheritedURLs
    }

    /// The fetcher's settings for `flare record`: `--debuginfod` if given ("" for none), else `$DEBUGINFOD_URLS`.
    static func settings(urls flag: String?) -> DebuginfodFetcher.Settings? {
        guard let urls = (flag ?? inheritedURLs)?.trimmingCharacters(in: .whitespaces), !urls.isEmpty else { return nil }
        return DebuginfodFetcher.Settings(urls: urls, cacheDirectory: DebuginfodFetcher.Settings.defaultCacheDirectory())
    }
}

/// The helper process behind Flare's debuginfod lookups (DebuginfodFetcher):
/// asks the servers in $DEBUGINFOD_URLS for one build-id's debug file through
/// elfutils' client library and prints the path of the file in the client's
/// cache. Not for users: `flare record` and `flare agent` run it with the
/// servers, the cache and the limits in its environment.
struct DebuginfodFind: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "debuginfod-find",
        abstract: "Fetch one build-id's debug file from $DEBUGINFOD_URLS and print its cached path (used by record and agent).",
        shouldDisplay: false
    )

    @Argument(help: "The build-id, in lowercase hex.")
    var buildID: String

    func run() throws {
        let hex = Array(buildID.utf8)
        guard !hex.isEmpty, hex.count % 2 == 0, hex.count <= 128, let bytes = Self.bytes(ofHex: hex) else {
            print("error: \(buildID.count > 200 ? "a long argument" : buildID) is not a build-id (an even number of lowercase hex digits)")
            throw ExitCode.failure
        }
        // Flare took the variable out of its environment at start; this process does no unwinding, so it goes back.
        guard let urls = DebuginfodEnvironment.inheritedURLs else {
            print("error: no servers: DEBUGINFOD_URLS is not set")
            throw ExitCode.failure
        }
        setenv("DEBUGINFOD_URLS", urls, 1)
        guard let client = debuginfod_begin() else {
            print("error: the debuginfod client could not start")
            throw ExitCode.failure
        }
        defer { debuginfod_end(client) }
        var path: UnsafeMutablePointer<CChar>?
        let fd = bytes.withUnsafeBufferPointer { debuginfod_find_debuginfo(client, $0.baseAddress, Int32($0.count), &path) }
        guard fd >= 0, let path else {
            print("error: \(String(cString: strerror(-fd)))")
            throw ExitCode.failure
        }
        close(fd)
        print(String(cString: path))
        free(path)
    }

    static func bytes(ofHex hex: [UInt8]) -> [UInt8]? {
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            default: nil
            }
        }
        var bytes: [UInt8] = []
        for i in stride(from: 0, to: hex.count, by: 2) {
            guard let high = nibble(hex[i]), let low = nibble(hex[i + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }
}
