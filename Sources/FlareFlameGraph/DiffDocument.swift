/// The `/api/v1/diff` document: the two-column call tree of a differential
/// flame graph and the functions whose self value changed most. The store
/// serves it and `flare diff` builds the same document for two pprof files, so
/// the viewer (and an exported HTML file) reads one format.
public enum DiffDocument {
    /// - Parameters:
    ///   - diff: the stack diff (B already scaled when `mode` is normalized).
    ///   - names: names of at least the kept nodes' and the listed functions.
    ///   - kept: the tree nodes to write (`diff.tree.keptNodes(maxNodes:)`).
    ///   - unit: `samples` or `nanoseconds`.
    ///   - mode: `normalized` or `absolute`.
    ///   - totalA, totalB: each side's raw total, before scaling.
    ///   - limit: how many functions to list.
    public static func json(_ diff: StackDiff, names: [Int64: FunctionName], kept: [Int32], unit: String, mode: String,
                            totalA: Int64, totalB: Int64, limit: Int) -> String {
        var out = "{\"unit\":" + JSONText.quoted(unit) + ",\"mode\":" + JSONText.quoted(mode)
        out += ",\"total_a\":" + String(totalA) + ",\"total_b\":" + String(totalB) + ",\"scale_b\":" + String(diff.scale)
        FlameGraphJSON.writeTree(diff.tree, kept: kept, names: names, columns: FlameGraphJSON.Column.diff, into: &out)
        out += ",\"functions\":"
        JSON.array(diff.rankedBySelfDelta().prefix(limit).map { f in
            let name = names[f.function] ?? FunctionName(name: "?", file: "")
            return .object([("name", .string(name.name)), ("file", .string(name.file)),
                             ("self_a", .double(f.selfA)), ("self_b", .double(f.selfB)), ("self_delta", .double(f.selfDelta)),
                             ("total_a", .double(f.totalA)), ("total_b", .double(f.totalB)), ("total_delta", .double(f.totalDelta))])
        }).write(to: &out)
        out += "}"
        return out
    }
}
