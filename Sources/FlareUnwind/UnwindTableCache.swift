import FlareProcesses

/// Unwind tables by file identity, so a library mapped by many processes is
/// compiled once.
public final class UnwindTableCache {
    private var tables: [String: UnwindTable?] = [:]
    /// Files whose CFI could not be read, and why.
    public private(set) var failures: [String: String] = [:]
    /// Bytes the tables hold; grows as functions are compiled.
    public var memoryBytes: Int { tables.values.reduce(0) { $0 + ($1?.memoryBytes ?? 0) } }

    public let locator: FileLocator

    public init(locator: FileLocator = .live) { self.locator = locator }

    public func table(for mapping: MappedFile, pid: Int32) -> UnwindTable? {
        let identity = mapping.identity
        if let cached = tables[identity] { return cached }
        var compiled: UnwindTable?
        if mapping.isFileBacked {
            for path in locator.candidates(for: mapping, pid: pid) {
                do {
                    compiled = try UnwindTableCompiler.open(path: path)
                    break
                } catch {
                    failures[mapping.filePath] = error.description
                }
            }
        }
        if compiled != nil { failures[mapping.filePath] = nil }
        tables[identity] = compiled
        return compiled
    }

    /// Drops the resident pages of the files the tables read (between windows).
    public func releasePages() {
        for case let table? in tables.values { table.releasePages() }
    }
}
