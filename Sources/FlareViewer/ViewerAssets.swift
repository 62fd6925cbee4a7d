import Foundation

/// The viewer's static files (`viewer/`: index.html, ES modules, one
/// stylesheet). The binary carries them, compiled in at build time by the
/// EmbedViewer plugin, so an installed `flare` needs no file beside it; a
/// directory on disk replaces them while working on the viewer.
///
/// Which files are used, first match wins:
/// 1. the directory given explicitly (`--viewer-dir`);
/// 2. `$FLARE_VIEWER_DIR`;
/// 3. the files embedded in the binary.
public struct ViewerAssets: Sendable {
    enum Source: Sendable {
        case directory(String)
        case embedded([String: [UInt8]])
    }

    let source: Source

    /// Where the files come from, for messages: a directory, or "embedded".
    public var origin: String {
        switch source {
        case .directory(let path): path
        case .embedded: "embedded"
        }
    }

    /// Uses `directory` as is, after checking that it holds `index.html`.
    public init(directory: String) throws(ViewerAssetsError) {
        guard Self.holdsViewer(directory) else { throw .notFound(directory: directory) }
        source = .directory(directory)
    }

    private init(embedded files: [String: [UInt8]]) { source = .embedded(files) }

    /// The files compiled into this binary, decoded once.
    public static let embedded: ViewerAssets = {
        var files: [String: [UInt8]] = [:]
        for (name, base64) in EmbeddedViewerFiles.base64 {
            if let data = Data(base64Encoded: base64) { files[name] = Array(data) }
        }
        return ViewerAssets(embedded: files)
    }()

    /// Finds the viewer by the rules above.
    public static func locate(explicit: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ViewerAssetsError) -> ViewerAssets {
        if let explicit, !explicit.isEmpty { return try ViewerAssets(directory: explicit) }
        if let fromEnvironment = environment["FLARE_VIEWER_DIR"], !fromEnvironment.isEmpty {
            return try ViewerAssets(directory: fromEnvironment)
        }
        return embedded
    }

    static func holdsViewer(_ directory: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: directory + "/index.html", isDirectory: &isDirectory) && !isDirectory.boolValue
    }

    /// The bytes of one file, by a name already checked to be servable.
    private func bytes(_ name: String) -> [UInt8]? {
        switch source {
        case .directory(let directory): FileManager.default.contents(atPath: directory + "/" + name).map(Array.init)
        case .embedded(let files): files[name]
        }
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
              let bytes = bytes(name) else { return nil }
        return (bytes, type)
    }

    func text(_ name: String) throws(ViewerAssetsError) -> String {
        guard Self.isServableName(name), let bytes = bytes(name) else { throw .missingFile(origin + "/" + name) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The names of the servable files, sorted.
    public var fileNames: [String] {
        let names: [String] = switch source {
        case .directory(let directory): (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        case .embedded(let files): Array(files.keys)
        }
        return names.filter(Self.isServableName).sorted()
    }

    /// The ES modules of the viewer (every `*.js` file).
    func moduleNames() -> [String] { fileNames.filter { $0.hasSuffix(".js") } }
}

public enum ViewerAssetsError: Error, CustomStringConvertible, Equatable {
    case notFound(directory: String)
    case missingFile(String)
    case malformed(String)

    public var description: String {
        switch self {
        case .notFound(let directory):
            "no viewer in \(directory) (it holds no index.html): pass --viewer-dir DIR or set FLARE_VIEWER_DIR to the viewer/ directory of a Flare checkout, or unset them to use the viewer built into flare"
        case .missingFile(let path):
            "the viewer file \(path) is missing: restore it in the viewer directory, or unset --viewer-dir / FLARE_VIEWER_DIR to use the viewer built into flare"
        case .malformed(let why):
            "the viewer's files cannot be inlined: \(why)"
        }
    }
}
