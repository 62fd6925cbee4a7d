import FlareFlameGraph
import FlareProfile

/// A pprof profile as the viewer's document: the same columnar JSON as
/// `/api/v1/flamegraph`, plus the profile's title and a summary of its
/// sample labels for the viewer's "about" panel.
public enum FlameGraphDocument {
    /// - Parameters:
    ///   - stacks: the profile's interned stacks.
    ///   - maxNodes: keep at most this many nodes (the largest by total).
    ///   - labels: label key → (value, samples), most frequent first, as shown to the user.
    /// - Returns: the JSON text.
    public static func json(stacks: ProfileStacks, title: String, maxNodes: Int = 200_000, labels: [(key: String, values: [(String, Int64)])] = []) -> String {
        let useSamples = stacks.hasSamples || !stacks.hasCPU
        var tree = FlameTree(columns: 1)
        for stack in stacks.stacks { tree.add(frames: stack.frames, value: Double(useSamples ? stack.samples : stack.cpuNanos), column: 0) }
        let kept = tree.keptNodes(maxNodes: maxNodes)
        var names: [Int64: FunctionName] = [:]
        for node in kept where tree.nodes[Int(node)].function >= 0 {
            let id = tree.nodes[Int(node)].function
            names[id] = stacks.functions[Int(id)]
        }
        var out = "{\"unit\":" + JSONText.quoted(useSamples ? "samples" : "nanoseconds")
        out += ",\"total\":" + String(useSamples ? stacks.totalSamples : stacks.totalCPUNanos)
        out += ",\"samples\":" + String(stacks.totalSamples) + ",\"cpu_ns\":" + String(stacks.totalCPUNanos)
        out += ",\"windows\":1,\"nodes_total\":" + String(tree.nodes.count) + ",\"nodes_kept\":" + String(kept.count)
        out += ",\"title\":" + JSONText.quoted(title)
        out += ",\"labels\":"
        JSON.array(labels.map { entry in
            .object([("key", .string(entry.key)), ("values", .array(entry.values.map { .array([.string($0.0), .int($0.1)]) }))])
        }).write(to: &out)
        FlameGraphJSON.writeTree(tree, kept: kept, names: names, columns: FlameGraphJSON.Column.single, into: &out)
        out += "}"
        return out
    }

    /// A profile's string sample labels: per key, the `limit` most frequent values by samples.
    public static func labelSummary(_ profile: Profile, limit: Int = 20) -> [(key: String, values: [(String, Int64)])] {
        var counts: [String: [String: Int64]] = [:]
        let weightIndex = profile.valueIndex(type: "samples", unit: "count") ?? 0
        for sample in profile.samples {
            let weight = weightIndex < sample.values.count ? max(0, sample.values[weightIndex]) : 1
            for label in sample.labels where label.str != 0 {
                counts[profile.string(label.key), default: [:]][profile.string(label.str), default: 0] += weight
            }
        }
        return counts.keys.sorted().map { key in
            let values = counts[key]!.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(limit)
            return (key, values.map { ($0.key, $0.value) })
        }
    }
}
