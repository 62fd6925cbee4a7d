import FlareFlameGraph
import FlareSymbols
import Foundation

/// Names, after the fact, the functions agents could not name: an agent
/// without a file's debug info ships `file+0xSTART` with the file's build-id
/// (PreparedWindow.unnamedFunctions); once that build-id's debug file reaches
/// the store (`POST /api/v1/debuginfo/BUILD_ID`), those functions get their
/// names in every query, windows stored before included, so hosts need no
/// debug packages installed.
struct LateSymbolizer: Sendable {
    /// Where uploaded debug files are kept: `<data dir>/debuginfo/BUILD_ID.debug`.
    let directory: String
    /// Asks debuginfod servers for the debug files of build-ids stored unnamed; nil: uploads only.
    let fetcher: DebuginfodFetcher?

    init(dataDirectory: String, debuginfod: DebuginfodFetcher.Settings? = nil) {
        directory = (dataDirectory as NSString).appendingPathComponent("debuginfo")
        fetcher = debuginfod.map(DebuginfodFetcher.init)
    }

    func path(_ buildID: String) -> String { directory + "/" + buildID + ".debug" }

    func has(_ buildID: String) -> Bool { FileManager.default.fileExists(atPath: path(buildID)) }

    static func checkBuildID(_ buildID: String) throws(StoreError) {
        guard (2...128).contains(buildID.count), buildID.count % 2 == 0, buildID.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            throw .badRequest("\(JSONText.quoted(String(buildID.prefix(200)))) is not a build-id: use the GNU build-id in lowercase hex")
        }
    }

    /// Keeps an uploaded debug file, after checking that it is ELF, carries
    /// `buildID` and names something; written whole or not at all.
    func save(buildID: String, bytes: [UInt8]) throws(StoreError) {
        try keep(buildID: buildID) { temporary in FileManager.default.createFile(atPath: temporary, contents: Data(bytes)) }
    }

    /// Keeps a copy of a file debuginfod fetched, checked the same way, without reading it into memory.
    func save(buildID: String, copyOf path: String) throws(StoreError) {
        try keep(buildID: buildID) { temporary in (try? FileManager.default.copyItem(atPath: path, toPath: temporary)) != nil }
    }

    private func keep(buildID: String, writing write: (String) -> Bool) throws(StoreError) {
        try Self.checkBuildID(buildID)
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw StoreError(.internalServerError, "cannot create \(directory): \(error)")
        }
        let temporary = directory + "/.upload-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: temporary) }
        guard write(temporary) else {
            throw StoreError(.internalServerError, "cannot write \(temporary): is the disk full, or the data directory not writable?")
        }
        let image: ElfImage
        do { image = try ElfImage(path: temporary) } catch {
            throw .badRequest("the upload for \(buildID) is not an ELF file: \(error)")
        }
        guard image.buildIDHex == buildID else {
            throw .badRequest("the upload carries build-id \(image.buildIDHex.isEmpty ? "none" : image.buildIDHex), not \(buildID): send the debug file of that build")
        }
        guard !image.symbols.isEmpty else {
            throw .badRequest("the upload for \(buildID) holds no symbols: send the file objcopy --only-keep-debug made (or the unstripped binary)")
        }
        guard rename(temporary, path(buildID)) == 0 else {
            throw StoreError(.internalServerError, "cannot keep the debug file as \(path(buildID)): \(String(cString: strerror(errno)))")
        }
    }

    /// Names what a window left unnamed: at once for build-ids whose debug file
    /// the store has; the others are asked of the debuginfod servers, and
    /// named when `adoptFetched` finds their files arrived.
    func windowStored(_ window: PreparedWindow, storage: any ProfileStorage) async throws -> Int {
        var named = 0
        for buildID in Set(window.unnamedFunctions.map(\.buildID)) {
            if has(buildID) {
                named += try await nameFunctions(buildID: buildID, storage: storage)
            } else if let path = fetcher?.debugFile(buildID: buildID) {
                named += try await keepFetched(buildID: buildID, path: path, storage: storage)
            }
        }
        return named
    }

    /// The debug files debuginfod gave since the last call, kept and used to name their functions.
    func adoptFetched(storage: any ProfileStorage) async throws -> Int {
        guard let fetcher else { return 0 }
        var named = 0
        for buildID in fetcher.takeArrivals() {
            guard let path = fetcher.debugFile(buildID: buildID) else { continue }
            named += try await keepFetched(buildID: buildID, path: path, storage: storage)
        }
        return named
    }

    private func keepFetched(buildID: String, path: String, storage: any ProfileStorage) async throws -> Int {
        do { try save(buildID: buildID, copyOf: path) } catch {
            fetcher?.refuse(buildID: buildID, why: "debuginfod gave \(path) for \(buildID): \(error.message)")
            return 0
        }
        return try await nameFunctions(buildID: buildID, storage: storage)
    }

    /// Names the functions of `buildID` still unnamed, from its debug file;
    /// returns how many were named.
    func nameFunctions(buildID: String, storage: any ProfileStorage) async throws -> Int {
        guard has(buildID) else { return 0 }
        let unnamed = try await storage.unnamedFunctions(buildID: buildID)
        guard !unnamed.isEmpty else { return 0 }
        let names = Self.names(unnamed, debugFile: path(buildID))
        try await storage.nameFunctions(names)
        return names.count
    }

    /// The physical function at each start offset, with its file and first line.
    static func names(_ unnamed: [(id: Int64, fileOffset: UInt64)], debugFile: String) -> [Int64: FunctionName] {
        let symbolizer = Symbolizer(debugRoot: "/nonexistent", expandInlines: false)
        guard let image = symbolizer.image(identity: debugFile, candidates: [debugFile]) else { return [:] }
        var names: [Int64: FunctionName] = [:]
        for (id, offset) in unnamed {
            guard let frame = symbolizer.frames(in: image, fileOffset: offset)?.last, !frame.function.isEmpty else { continue }
            names[id] = FunctionName(name: frame.function, file: frame.file, line: frame.startLine)
        }
        return names
    }
}
