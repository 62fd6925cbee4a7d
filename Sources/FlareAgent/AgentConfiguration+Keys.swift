import FlareRecorder
import Foundation

extension AgentConfiguration {
    /// One configuration key: its name in the file (`section.key`), how to
    /// read it, and how to show it back.
    struct Key: Sendable {
        var name: String
        var help: String
        var apply: @Sendable (Setting, inout AgentConfiguration) throws(ConfigurationError) -> Void
        var show: @Sendable (AgentConfiguration) -> String
    }

    /// Every key `flare agent` reads. The environment variable of `a.b` is `FLARE_A_B`.
    static let keys: [Key] = [
        Key(name: "sampling.frequency", help: "samples per second per CPU (1 to kernel.perf_event_max_sample_rate)",
            apply: { s, c throws(ConfigurationError) in c.frequency = UInt64(try integer(s, in: 1...100_000)) },
            show: { String($0.frequency) }),
        Key(name: "sampling.call_graph", help: "dwarf (complete stacks) or fp (frame pointers only, cheapest)",
            apply: { s, c throws(ConfigurationError) in
                let text = try string(s)
                guard let mode = RecordOptions.CallGraph(rawValue: text) else { throw bad(s, "use dwarf or fp") }
                c.callGraph = mode
            },
            show: { $0.callGraph.rawValue }),
        Key(name: "sampling.stack_size", help: "bytes of user stack copied per sample for DWARF unwinding (8 to 65528)",
            apply: { s, c throws(ConfigurationError) in c.stackBytes = UInt32(try bytes(s, in: 8...65528)) & ~7 },
            show: { String($0.stackBytes) }),
        Key(name: "sampling.span_labels", help: "label samples with the span their thread was serving",
            apply: { s, c throws(ConfigurationError) in c.spanLabels = try boolean(s) },
            show: { String($0.spanLabels) }),
        Key(name: "targets.pids", help: "only these processes (empty: every process)",
            apply: { s, c throws(ConfigurationError) in
                var pids: [Int32] = []
                for item in try list(s) { pids.append(Int32(try integer(item, in: 1...Int(Int32.max)))) }
                c.pids = pids
            },
            show: { "[" + $0.pids.map(String.init).joined(separator: ", ") + "]" }),
        Key(name: "targets.process_regex", help: "only processes whose name or executable matches",
            apply: { s, c throws(ConfigurationError) in c.processPattern = try optionalString(s) },
            show: { $0.processPattern.map(quoted) ?? "\"\"" }),
        Key(name: "targets.cgroup", help: "only processes in this cgroup path or below it (a container, a systemd unit)",
            apply: { s, c throws(ConfigurationError) in c.cgroupPrefix = try optionalString(s) },
            show: { $0.cgroupPrefix.map(quoted) ?? "\"\"" }),
        Key(name: "targets.exclude", help: "never these processes: regular expressions on the name or executable",
            apply: { s, c throws(ConfigurationError) in
                var patterns: [String] = []
                for item in try list(s) { patterns.append(try string(item)) }
                c.excludePatterns = patterns
            },
            show: { "[" + $0.excludePatterns.map(quoted).joined(separator: ", ") + "]" }),
        Key(name: "window.length", help: "how much time one profile covers (1s to 10m; default 10s)",
            apply: { s, c throws(ConfigurationError) in c.windowSeconds = try duration(s, in: 1...600) },
            show: { formatSeconds($0.windowSeconds) }),
        Key(name: "shipping.store_url", help: "the Flare store to send windows to (\"\" for none)",
            apply: { s, c throws(ConfigurationError) in c.storeURL = try url(s) },
            show: { $0.storeURL.map(quoted) ?? "\"\"" }),
        Key(name: "shipping.pyroscope_url", help: "also (or, with store_url = \"\", instead) send to this Pyroscope-compatible server",
            apply: { s, c throws(ConfigurationError) in c.pyroscopeURL = try url(s) },
            show: { $0.pyroscopeURL.map(quoted) ?? "\"\"" }),
        Key(name: "shipping.token_file", help: "a file holding the bearer token for ingest",
            apply: { s, c throws(ConfigurationError) in c.tokenFile = try optionalString(s) },
            show: { $0.tokenFile.map(quoted) ?? "\"\"" }),
        Key(name: "shipping.spool_dir", help: "where windows wait until the store acknowledges them",
            apply: { s, c throws(ConfigurationError) in
                guard let dir = try optionalString(s) else { throw bad(s, "give a directory") }
                c.spoolDirectory = dir
            },
            show: { quoted($0.spoolDirectory) }),
        Key(name: "shipping.spool_max_bytes", help: "spool size bound; the oldest windows are dropped (and counted) beyond it",
            apply: { s, c throws(ConfigurationError) in c.spoolMaxBytes = try bytes(s, in: (1 << 20)...(1 << 40)) },
            show: { String($0.spoolMaxBytes) }),
        Key(name: "shipping.timeout", help: "per-upload timeout",
            apply: { s, c throws(ConfigurationError) in c.uploadTimeoutSeconds = try duration(s, in: 0.1...300) },
            show: { formatSeconds($0.uploadTimeoutSeconds) }),
        Key(name: "agent.host_name", help: "the host.name label (default: the system's host name)",
            apply: { s, c throws(ConfigurationError) in
                c.hostName = try optionalString(s) ?? AgentConfiguration.systemHostName
            },
            show: { quoted($0.hostName) }),
        Key(name: "agent.metrics_address", help: "HOST:PORT of the Prometheus /metrics endpoint (\"\" for none)",
            apply: { s, c throws(ConfigurationError) in
                let text = try optionalString(s)
                if let text, hostPort(text) == nil { throw bad(s, "use HOST:PORT, for example 127.0.0.1:4101") }
                c.metricsAddress = text
            },
            show: { $0.metricsAddress.map(quoted) ?? "\"\"" }),
        Key(name: "agent.cache_bytes", help: "memory for symbol and unwind caches; the files used longest ago are dropped beyond it",
            apply: { s, c throws(ConfigurationError) in c.cacheBytes = try bytes(s, in: (1 << 20)...(1 << 36)) },
            show: { String($0.cacheBytes) }),
        Key(name: "agent.debug_info_max_bytes",
            help: "largest DWARF (uncompressed) read for source lines and inlined calls; bigger files are named from their symbols",
            apply: { s, c throws(ConfigurationError) in c.debugInfoMaxBytes = try bytes(s, in: 0...(1 << 40)) },
            show: { String($0.debugInfoMaxBytes) }),
        Key(name: "agent.memory_limit", help: "resident memory above which the caches are dropped at the next window",
            apply: { s, c throws(ConfigurationError) in c.memoryLimit = try bytes(s, in: (16 << 20)...(1 << 40)) },
            show: { String($0.memoryLimit) }),
        Key(name: "agent.max_mappings_per_process",
            help: "executable mappings held per process; beyond it a process's new mappings are counted and their frames left unnamed",
            apply: { s, c throws(ConfigurationError) in c.maxMappingsPerProcess = try integer(s, in: 64...(1 << 20)) },
            show: { String($0.maxMappingsPerProcess) }),
        Key(name: "agent.max_thread_names_per_process",
            help: "thread names held per process; beyond it threads are labelled with the process's name",
            apply: { s, c throws(ConfigurationError) in c.maxThreadNamesPerProcess = try integer(s, in: 1...(1 << 20)) },
            show: { String($0.maxThreadNamesPerProcess) }),
        Key(name: "agent.debuginfod_urls",
            help: "debuginfod servers (space-separated URLs) asked for debug files missing on the host, off the sampling path (default: $DEBUGINFOD_URLS; \"\" for none)",
            apply: { s, c throws(ConfigurationError) in c.debuginfodURLs = try optionalString(s) },
            show: { $0.debuginfodURLs.map(quoted) ?? "\"\"" }),
        Key(name: "agent.debuginfod_cache_dir", help: "where fetched debug files are kept (libdebuginfod's cache)",
            apply: { s, c throws(ConfigurationError) in
                guard let dir = try optionalString(s), dir.hasPrefix("/") else { throw bad(s, "give an absolute directory") }
                c.debuginfodCacheDirectory = dir
            },
            show: { quoted($0.debuginfodCacheDirectory) }),
        Key(name: "agent.debuginfod_timeout", help: "how long one fetch may take before it counts as a miss (1s to 5m)",
            apply: { s, c throws(ConfigurationError) in c.debuginfodTimeoutSeconds = try duration(s, in: 1...300) },
            show: { formatSeconds($0.debuginfodTimeoutSeconds) }),
        Key(name: "agent.labels", help: "extra resource labels on every window, e.g. { env = \"prod\" }",
            apply: { s, c throws(ConfigurationError) in
                guard case .table(let table) = s.value else { throw bad(s, "use a table of strings, or NAME=VALUE,NAME=VALUE") }
                c.labels.merge(table) { $1 }
            },
            show: { "{" + $0.labels.sorted { $0.key < $1.key }.map { "\($0.key) = \(quoted($0.value))" }.joined(separator: ", ") + "}" }),
        Key(name: "agent.log_level", help: "trace, debug, info, notice, warning, error or critical",
            apply: { s, c throws(ConfigurationError) in
                let level = try string(s)
                guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(level) else { throw bad(s, "use trace, debug, info, notice, warning, error or critical") }
                c.logLevel = level
            },
            show: { $0.logLevel }),
    ]

    static func bad(_ s: Setting, _ advice: String) -> ConfigurationError {
        ConfigurationError("\(s.key) in \(s.source): invalid value \(describe(s.value)): \(advice)")
    }

    static func describe(_ value: RawValue) -> String {
        switch value {
        case .text(let t): quoted(t)
        case .integer(let i): String(i)
        case .number(let d): String(d)
        case .boolean(let b): String(b)
        case .list(let items): "[" + items.map(describe).joined(separator: ", ") + "]"
        case .table: "a table"
        }
    }

    static func quoted(_ s: String) -> String {
        "\"" + s.unicodeScalars.map { $0 == "\"" || $0 == "\\" ? "\\" + String($0) : $0.value < 0x20 ? "?" : String($0) }.joined() + "\""
    }

    static func string(_ s: Setting) throws(ConfigurationError) -> String {
        guard case .text(let text) = s.value else { throw bad(s, "use a string") }
        return text
    }

    static func optionalString(_ s: Setting) throws(ConfigurationError) -> String? {
        let text = try string(s)
        return text.isEmpty ? nil : text
    }

    static func integer(_ s: Setting, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        let value: Int?
        switch s.value {
        case .integer(let i): value = i
        case .text(let t): value = Int(t.trimmingCharacters(in: .whitespaces))
        default: value = nil
        }
        guard let value else { throw bad(s, "use a whole number") }
        guard range.contains(value) else { throw bad(s, "use a number from \(range.lowerBound) to \(range.upperBound)") }
        return value
    }

    static func boolean(_ s: Setting) throws(ConfigurationError) -> Bool {
        switch s.value {
        case .boolean(let b): return b
        case .text(let t) where ["true", "1", "yes", "on"].contains(t.lowercased()): return true
        case .text(let t) where ["false", "0", "no", "off"].contains(t.lowercased()): return false
        default: throw bad(s, "use true or false")
        }
    }

    static func list(_ s: Setting) throws(ConfigurationError) -> [Setting] {
        switch s.value {
        case .list(let items): return items.map { Setting(key: s.key, value: $0, source: s.source) }
        case .text(let t): return t.split(separator: ",").map { Setting(key: s.key, value: .text(String($0).trimmingCharacters(in: .whitespaces)), source: s.source) }
        default: throw bad(s, "use a list")
        }
    }

    /// `10s`, `500ms`, `2m`, or a number of seconds.
    static func duration(_ s: Setting, in range: ClosedRange<Double>) throws(ConfigurationError) -> Double {
        var seconds: Double?
        switch s.value {
        case .integer(let i): seconds = Double(i)
        case .number(let d): seconds = d
        case .text(let t): seconds = parseDuration(t)
        default: seconds = nil
        }
        guard let seconds else { throw bad(s, "use a duration such as 10s, 500ms or 2m") }
        guard range.contains(seconds) else { throw bad(s, "use a duration from \(formatSeconds(range.lowerBound)) to \(formatSeconds(range.upperBound))") }
        return seconds
    }

    public static func parseDuration(_ text: String) -> Double? {
        let t = text.trimmingCharacters(in: .whitespaces)
        for (suffix, scale) in [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)] where t.hasSuffix(suffix) {
            return Double(t.dropLast(suffix.count)).map { $0 * scale }
        }
        return Double(t)
    }

    static func formatSeconds(_ seconds: Double) -> String {
        seconds < 1 ? "\(Int(seconds * 1000))ms" : seconds == seconds.rounded() ? "\(Int(seconds))s" : "\(seconds)s"
    }

    /// `256MiB`, `64k`, `1G`, or a number of bytes.
    static func bytes(_ s: Setting, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        var value: Int?
        switch s.value {
        case .integer(let i): value = i
        case .text(let t):
            let text = t.trimmingCharacters(in: .whitespaces).lowercased()
            let units: [(String, Int)] = [("kib", 1 << 10), ("mib", 1 << 20), ("gib", 1 << 30), ("kb", 1000), ("mb", 1_000_000), ("gb", 1_000_000_000),
                                          ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("b", 1)]
            value = Int(text)
            for (suffix, scale) in units where value == nil && text.hasSuffix(suffix) {
                value = Double(text.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)).map { Int($0 * Double(scale)) }
            }
        default: value = nil
        }
        guard let value else { throw bad(s, "use a size such as 256MiB, 64k or a number of bytes") }
        guard range.contains(value) else { throw bad(s, "use a size from \(range.lowerBound) to \(range.upperBound) bytes") }
        return value
    }

    /// An http(s) URL with a host, or nil for "".
    static func url(_ s: Setting) throws(ConfigurationError) -> String? {
        guard let text = try optionalString(s) else { return nil }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty else {
            throw bad(s, "use an http:// or https:// URL with a host, for example http://flare-store:4100")
        }
        return text.hasSuffix("/") ? String(text.dropLast()) : text
    }

    static func hostPort(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }

    /// `--help` text for the configuration file.
    public static var keysHelp: String {
        keys.map { "  \($0.name) (FLARE_\($0.name.uppercased().replacingOccurrences(of: ".", with: "_"))): \($0.help)" }.joined(separator: "\n")
    }
}
