/// The viewer's data format: the columnar call tree that the store serves from
/// `/api/v1/flamegraph` and `/api/v1/diff` and that exported HTML files inline.
/// Names are written once; per node come its name index, its parent's index
/// (-1 for the root) and one array per value column, parents before children.
public enum FlameGraphJSON {
    /// One array of node values: `total` or `self` of tree column `column`.
    public struct Column: Sendable {
        public var key: String
        public var column: Int
        public var isTotal: Bool
        public init(_ key: String, column: Int, isTotal: Bool) { self.key = key; self.column = column; self.isTotal = isTotal }

        public static let single = [Column("total", column: 0, isTotal: true), Column("self", column: 0, isTotal: false)]
        public static let diff = [
            Column("total_a", column: 0, isTotal: true), Column("self_a", column: 0, isTotal: false),
            Column("total_b", column: 1, isTotal: true), Column("self_b", column: 1, isTotal: false),
        ]
    }

    /// Appends `,"names":[…],"files":[…],"lines":[…],"nodes":{…}` for the
    /// `kept` nodes; `lines` are the functions' first lines (0: unknown).
    public static func writeTree(_ tree: FlameTree, kept: [Int32], names: [Int64: FunctionName], columns: [Column], into out: inout String) {
        var nameIndex: [Int64: Int] = [:]
        var nameList: [FunctionName] = [FunctionName(name: "total", file: "")]
        var newIndex: [Int32: Int] = [:]
        for (i, node) in kept.enumerated() { newIndex[node] = i }
        var nodeNames: [Int] = []
        var parents: [Int] = []
        nodeNames.reserveCapacity(kept.count)
        parents.reserveCapacity(kept.count)
        for node in kept {
            let n = tree.nodes[Int(node)]
            if n.function < 0 {
                nodeNames.append(0)
            } else if let i = nameIndex[n.function] {
                nodeNames.append(i)
            } else {
                nameIndex[n.function] = nameList.count
                nodeNames.append(nameList.count)
                nameList.append(names[n.function] ?? FunctionName(name: "?", file: ""))
            }
            parents.append(n.parent < 0 ? -1 : newIndex[n.parent] ?? -1)
        }
        out += ",\"names\":["
        for (i, name) in nameList.enumerated() { if i > 0 { out += "," }; JSONText.appendQuoted(name.name, to: &out) }
        out += "],\"files\":["
        for (i, name) in nameList.enumerated() { if i > 0 { out += "," }; JSONText.appendQuoted(name.file, to: &out) }
        out += "],\"lines\":[" + nameList.map { String(max(0, $0.line)) }.joined(separator: ",")
        out += "],\"nodes\":{\"name\":[" + nodeNames.map(String.init).joined(separator: ",") + "]"
        out += ",\"parent\":[" + parents.map(String.init).joined(separator: ",") + "]"
        for column in columns {
            out += ",\"\(column.key)\":["
            out += kept.map { node in
                let n = tree.nodes[Int(node)]
                return number(column.isTotal ? n.total[column.column] : n.selfValue[column.column])
            }.joined(separator: ",")
            out += "]"
        }
        out += "}"
    }

    /// Whole values as integers, scaled (diff) values with three decimals.
    public static func number(_ v: Double) -> String {
        guard v.isFinite else { return "0" }
        return v == v.rounded() && abs(v) < 9e15 ? String(Int64(v)) : String((v * 1000).rounded() / 1000)
    }
}
