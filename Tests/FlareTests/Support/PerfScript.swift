import Foundation

/// Stacks from the real `perf`: `perf record --call-graph dwarf` then
/// `perf script`, folded the same way Flare folds its own.
enum PerfScript {
    /// Folded stacks (root first) with their sample counts. perf copies the same
    /// 16 KiB of stack as Flare and is asked not to cut stacks at 127 frames.
    static func dwarfStacks(_ command: [String], frequency: String, demangleSwift: Bool = false) throws -> [String: Int] {
        let perf = try TestSupport.perf()
        let data = TestSupport.temporaryPath("perf-\(UUID().uuidString).data")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let recorded = try TestSupport.run(perf, ["record", "-q", "--call-graph", "dwarf,16384", "-e", "cpu-clock", "-F", frequency, "-o", data] + command)
        guard recorded.status == 0 else { throw TestFailure("perf record failed: \(recorded.stderr)") }
        return try stacks(of: data, demangleSwift: demangleSwift)
    }

    /// Folded stacks from `perf script` on an existing recording. perf 6.1 does
    /// not demangle Swift; `demangleSwift` runs its output through the
    /// toolchain's swift-demangle, whose full form is the one Flare prints.
    static func stacks(of data: String, demangleSwift: Bool = false) throws -> [String: Int] {
        let perf = try TestSupport.perf()
        var script = try TestSupport.run(perf, ["script", "--no-inline", "--max-stack", "1024", "-F", "ip,sym", "-i", data])
        guard script.status == 0 else { throw TestFailure("perf script failed: \(script.stderr)") }
        if demangleSwift {
            let mangled = data + ".script"
            try script.stdout.write(toFile: mangled, atomically: false, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: mangled) }
            let swiftDemangle = URL(fileURLWithPath: TestSupport.swiftc).deletingLastPathComponent().appendingPathComponent("swift-demangle").path
            script = try TestSupport.run("/bin/sh", ["-c", "\"$0\" < \"$1\"", swiftDemangle, mangled])
            guard script.status == 0 else { throw TestFailure("swift-demangle failed: \(script.stderr)") }
        }
        var stacks: [String: Int] = [:]
        var frames: [String] = []
        func flush() {
            if !frames.isEmpty { stacks[frames.reversed().joined(separator: ";"), default: 0] += 1 }
            frames = []
        }
        for line in script.stdout.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { flush(); continue }
            // "11cc leaf_hot+0x2c"
            let parts = trimmed.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, UInt64(parts[0], radix: 16) != nil else { continue }
            frames.append(normalize(String(parts[1])))
        }
        flush()
        return stacks
    }

    /// One naming for both tools: no "+0x…" offsets, no "@@GLIBC_2.34"
    /// versions, and unnamed addresses as "[unknown]".
    static func normalize(_ name: String) -> String {
        var name = name
        if let plus = name.range(of: "+0x", options: .backwards) { name = String(name[..<plus.lowerBound]) }
        if let at = name.firstIndex(of: "@"), at != name.startIndex { name = String(name[..<at]) }
        return name.isEmpty ? "[unknown]" : name
    }

    /// Flare's folded output in the same naming; `unnamed` are names Flare
    /// finds that perf leaves as "[unknown]".
    static func normalizedFolded(_ folded: String, unnamed: Set<String> = []) -> [String: Int] {
        var stacks: [String: Int] = [:]
        for line in folded.split(separator: "\n") {
            guard let space = line.lastIndex(of: " "), let count = Int(line[line.index(after: space)...]) else { continue }
            let frames = line[..<space].split(separator: ";").map { frame -> String in
                let text = String(frame)
                if unnamed.contains(text) { return "[unknown]" }
                return text.range(of: #"\+0x[0-9a-f]+$"#, options: .regularExpression) != nil ? "[unknown]" : normalize(text)
            }
            stacks[frames.joined(separator: ";"), default: 0] += count
        }
        return stacks
    }
}
