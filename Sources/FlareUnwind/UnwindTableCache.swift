import FlareProcesses
import FlareSymbols
import FlareTargetFiles

/// Unwind tables by file identity, so a library mapped by many processes is
/// compiled once.
public final class UnwindTableCache {
    /// A class, so a lookup stamps its use without hashing the identity again.
    private final class Entry {
        let table: UnwindTable?
        var lastUse: Int
        init(_ table: UnwindTable?, lastUse: Int) {
            self.table = table
            self.lastUse = lastUse
        }
    }

    private var tables: [String: Entry] = [:]
    /// Files whose CFI could not be read, and why.
    public private(set) var failures: [String: String] = [:]
    /// Bytes the tables hold; grows as functions are compiled.
    public var memoryBytes: Int { tables.values.reduce(0) { $0 + ($1.table?.memoryBytes ?? 0) } }
    /// Advanced by the owner (the agent: once per window); tables are stamped with it when used.
    public var clock = 0

    /// Each file's table, keyed by file identity.
    public var cachedFiles: [CachedFile] {
        tables.map { CachedFile(key: $0.key, lastUse: $0.value.lastUse, bytes: $0.value.table?.memoryBytes ?? 0) }
    }

    /// Drops the tables named by `cachedFiles` keys: the next use compiles them again.
    public func evict(_ keys: Set<String>) {
        for key in keys { tables[key] = nil }
    }

    public let locator: FileLocator

    public init(locator: FileLocator = .live) { self.locator = locator }

    public func table(for mapping: MappedFile, pid: Int32) -> UnwindTable? {
        let identity = mapping.identity
        if let cached = tables[identity] {
            cached.lastUse = clock
            return cached.table
        }
        var compiled: UnwindTable?
        if mapping.isFileBacked {
            let rules = locator.rules(pid: pid)
            for path in locator.candidates(for: mapping, pid: pid) {
                do {
                    compiled = try UnwindTableCompiler.open(path: path, rules: rules)
                    break
                } catch {
                    failures[mapping.filePath] = error.description
                }
            }
        }
        if compiled != nil { failures[mapping.filePath] = nil }
        tables[identity] = Entry(compiled, lastUse: clock)
        return compiled
    }

    /// Drops the resident pages of the files the tables read (between windows).
    public func releasePages() {
        for entry in tables.values { entry.table?.releasePages() }
    }
}
