import FlareProcesses

/// Compiled unwind tables by file identity, so a library mapped by many
/// processes is compiled once.
public final class UnwindTableCache {
    private var tables: [String: UnwindTable?] = [:]
    /// Files whose CFI could not be read, and why.
    public private(set) var failures: [String: String] = [:]
    public private(set) var memoryBytes = 0

    public let locator: FileLocator

    public init(locator: FileLocator = .live) { self.locator = locator }

    public func table(for mapping: MappedFile, pid: Int32) -> UnwindTable? {
        let identity = mapping.identity
        if let cached = tables[identity] { return cached }
        var compiled: UnwindTable?
        if mapping.isFileBacked {
            for path in locator.candidates(for: mapping, pid: pid) {
                do {
                    compiled = try UnwindTableCompiler.compile(path: path)
                    break
                } catch {
                    failures[mapping.filePath] = error.description
                }
            }
        }
        if let compiled {
            failures[mapping.filePath] = nil
            memoryBytes += compiled.memoryBytes
        }
        tables[identity] = compiled
        return compiled
    }
}
