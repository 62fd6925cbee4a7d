/// A call tree merged from stacks: node 0 is the root ("total"), every other
/// node is one function called from its parent.
public struct FlameTree: Sendable {
    public struct Node: Sendable {
        public var function: Int64      // function id; -1 for the root
        public var parent: Int32
        public var total: [Double]      // one value per column (one, or two for a diff)
        public var selfValue: [Double]
    }

    public private(set) var nodes: [Node]
    private var childIndex: [ChildKey: Int32] = [:]
    private struct ChildKey: Hashable { var parent: Int32; var function: Int64 }
    let columns: Int

    public init(columns: Int) {
        self.columns = columns
        nodes = [Node(function: -1, parent: -1, total: Array(repeating: 0, count: columns), selfValue: Array(repeating: 0, count: columns))]
    }

    /// Adds one stack (leaf first) with `value` in `column`.
    public mutating func add(frames: [Int64], value: Double, column: Int) {
        guard value != 0 else { return }
        var node: Int32 = 0
        nodes[0].total[column] += value
        for function in frames.reversed() {
            let key = ChildKey(parent: node, function: function)
            if let child = childIndex[key] {
                node = child
            } else {
                let child = Int32(nodes.count)
                nodes.append(Node(function: function, parent: node, total: Array(repeating: 0, count: columns), selfValue: Array(repeating: 0, count: columns)))
                childIndex[key] = child
                node = child
            }
            nodes[Int(node)].total[column] += value
        }
        nodes[Int(node)].selfValue[column] += value
    }

    /// The indexes of the `maxNodes` nodes with the largest totals (summed over
    /// columns), in creation order. A parent is created before its children and
    /// its total is at least theirs, so the kept set is always a connected tree.
    public func keptNodes(maxNodes: Int) -> [Int32] {
        guard nodes.count > maxNodes else { return Array(0..<Int32(nodes.count)) }
        let weight = nodes.map { $0.total.reduce(0) { $0 + abs($1) } }
        var order = Array(0..<Int32(nodes.count))
        order.sort { weight[Int($0)] != weight[Int($1)] ? weight[Int($0)] > weight[Int($1)] : $0 < $1 }
        return order.prefix(max(1, maxNodes)).sorted()
    }
}
