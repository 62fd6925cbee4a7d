import Foundation

/// The viewer's static files (`viewer/`: index.html, ES modules, one
/// stylesheet), found on disk so that a deployed binary needs no checkout.
///
/// Where they are looked for, first match wins:
/// 1. the directory given explicitly (`--viewer-dir`);
/// 2. `$FLARE_VIEWER_DIR`;
/// 3. `<directory of the executable>/../share/flare/viewer` (an installed layout:
///    `/usr/local/bin/flare` and `/usr/local/share/flare/viewer`);
/// 4. a `viewer/` directory holding `index.html` in the executable's directory or
///    any parent of it (`.build/debug/flare` inside a checkout).
public struct ViewerAssets: Sendable {
    public let directory: String

    /// Uses `directory` as is, after checking that it holds `index.html`.
    public init(directory: String) throws(ViewerAssetsError) {
        guard Self.holdsViewer(directory) else { throw .notFound(searched: [directory]) }
        self.directory = directory
    }

    /// Finds the viewer by the rules above.
    public static func locate(explicit: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ViewerAssetsError) -> ViewerAssets {
        if let explicit, !explicit.isEmpty { return try ViewerAssets(directory: explicit) }
        if let fromEnvironment = environment["FLARE_VIEWER_DIR"], !fromEnvironment.isEmpty {
            return try ViewerAssets(directory: fromEnvironment)
        }
        var searched: [String] = []
        for candidate in candidates(executable: executablePath()) {
            searched.append(candidate)
            if holdsViewer(candidate) { return ViewerAssets(unchecked: candidate) }
        }
        throw .notFound(searched: searched)
    }

    private init(unchecked directory: String) { self.directory = directory }

    /// The real path of the running executable (symlinks resolved, so that a
    /// `/usr/bin/flare` link into an install tree still finds its share/ directory).
    static func executablePath() -> String? {
        let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments.first
        return path.map { URL(fileURLWithPath: $0).resolvingSymlinksInPath().path }
    }

    static func candidates(executable: String?) -> [String] {
        guard let executable else { return [] }
        let binDirectory = URL(fileURLWithPath: executable).deletingLastPathComponent()
        var result = [binDirectory.deletingLastPathComponent().appendingPathComponent("share/flare/viewer").path]
        var directory = binDirectory
        while true {
            result.append(directory.appendingPathComponent("viewer").path)
            let parent = directory.deletingLastPathComponent()
            if parent.path == directory.path || directory.path == "/" { break }
            directory = parent
        }
        return result
    }

    static func holdsViewer(_ directory: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: directory + "/index.html", isDirectory: &isDirectory) && !isDirectory.boolValue
    }

    // MARK: Serving

    /// A file name the store may serve: one path component of letters, digits,
    /// `-` and `_`, then a known extension. Nothing else can name a file (no
    /// `/`, no `..`), so requests cannot leave the viewer directory.
    public static func isServableName(_ name: String) -> Bool {
        guard let dot = name.lastIndex(of: "."), contentTypes[String(name[name.index(after: dot)...])] != nil else { return false }
        let base = name[..<dot]
        return !base.isEmpty && base.utf8.count <= 64 && base.unicodeScalars.allSatisfy {
            $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_")
        }
    }

    static let contentTypes = [
        "html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8",
        "css": "text/css; charset=utf-8", "svg": "image/svg+xml", "json": "application/json; charset=utf-8",
    ]

    /// The bytes and content type of one viewer file, or nil when the name is
    /// not servable or no such file exists.
    public func file(named name: String) -> (bytes: [UInt8], contentType: String)? {
        guard Self.isServableName(name), let ext = name.split(separator: ".").last, let type = Self.contentTypes[String(ext)],
              let data = FileManager.default.contents(atPath: directory + "/" + name) else { return nil }
        return (Array(data), type)
    }

    func text(_ name: String) throws(ViewerAssetsError) -> String {
        guard let data = FileManager.default.contents(atPath: directory + "/" + name) else { throw .missingFile(directory + "/" + name) }
        return String(decoding: data, as: UTF8.self)
    }

    /// The ES modules of the viewer (every `*.js` file).
    func moduleNames() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".js") && Self.isServableName($0) }.sorted()
    }
}

public enum ViewerAssetsError: Error, CustomStringConvertible, Equatable {
    case notFound(searched: [String])
    case missingFile(String)
    case malformed(String)

    public var description: String {
        switch self {
        case .notFound(let searched):
            "the viewer's files (viewer/index.html and its modules) were not found (looked in \(searched.isEmpty ? "no directory" : searched.joined(separator: ", "))): pass --viewer-dir DIR or set FLARE_VIEWER_DIR to the viewer/ directory of a Flare checkout, or install it as <prefix>/share/flare/viewer beside <prefix>/bin/flare"
        case .missingFile(let path):
            "the viewer file \(path) is missing: reinstall the viewer/ directory"
        case .malformed(let why):
            "the viewer's files cannot be inlined: \(why)"
        }
    }
}
