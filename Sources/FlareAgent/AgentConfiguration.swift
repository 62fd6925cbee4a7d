import FlareProcesses
import FlareRecorder
import FlareSymbols
import Foundation
import TOMLKit

/// Everything `flare agent` can be told, from its embedded defaults, a TOML
/// file, `FLARE_…` environment variables and flags, in that order of precedence.
public struct AgentConfiguration: Sendable {
    // [sampling]
    public var frequency: UInt64 = 99
    public var callGraph: RecordOptions.CallGraph = .dwarf
    public var stackBytes: UInt32 = 16384
    public var spanLabels = true
    // [targets]
    public var pids: [Int32] = []
    public var processPattern: String?
    public var cgroupPrefix: String?
    public var excludePatterns: [String] = []
    // [window]
    public var windowSeconds: Double = 10
    // [shipping]
    public var storeURL: String? = "http://127.0.0.1:4100"
    public var pyroscopeURL: String?
    public var tokenFile: String?
    public var spoolDirectory = AgentConfiguration.defaultSpoolDirectory
    public var spoolMaxBytes = 256 << 20
    public var uploadTimeoutSeconds: Double = 10
    // [agent]
    public var hostName = AgentConfiguration.systemHostName
    public var metricsAddress: String? = "127.0.0.1:4101"
    public var cacheBytes = 32 << 20
    public var debugInfoMaxBytes = 8 << 20
    public var memoryLimit = 128 << 20
    public var maxMappingsPerProcess = ProcessLimits().mappings
    public var maxThreadNamesPerProcess = ProcessLimits().threadNames
    public var labels: [String: String] = [:]
    public var logLevel = "info"
    public var debuginfodURLs: String? = AgentConfiguration.inheritedDebuginfodURLs
    public var debuginfodCacheDirectory = DebuginfodFetcher.Settings.defaultCacheDirectory()
    public var debuginfodTimeoutSeconds: Double = 10

    /// `$DEBUGINFOD_URLS` as the process was started with it: the default of
    /// `agent.debuginfod_urls` (the variable itself is kept out of the agent's
    /// environment, see DebuginfodFetcher). Set once, before any configuration is read.
    nonisolated(unsafe) public static var inheritedDebuginfodURLs: String?

    public init() {}

    public static var defaultSpoolDirectory: String {
        if getuid() == 0 { return "/var/lib/flare/spool" }
        let home = ProcessInfo.processInfo.environment["HOME"] ?? "/tmp"
        return home + "/.local/share/flare/spool"
    }

    public static var systemHostName: String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count - 1)
        return String(cString: buffer)
    }

    /// The effective settings as `key = value` lines (`flare agent --print-config`).
    public func describe() -> String {
        AgentConfiguration.keys.map { "\($0.name) = \($0.show(self))" }.joined(separator: "\n")
    }

    /// The sampling settings: changing them needs a new perf session.
    public var samplingKey: String {
        "\(frequency)/\(callGraph.rawValue)/\(stackBytes)/\(spanLabels)/\(cacheBytes)/\(debugInfoMaxBytes)/\(maxMappingsPerProcess)/\(maxThreadNamesPerProcess)"
            + "/\(debuginfodURLs ?? "")/\(debuginfodCacheDirectory)/\(debuginfodTimeoutSeconds)"
    }
}

/// A configuration problem, naming the key or the file, and what to do.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension AgentConfiguration {
    /// A raw setting before it is checked: TOML gives typed values, the
    /// environment and flags give text.
    public enum RawValue: Sendable {
        case text(String)
        case integer(Int)
        case number(Double)
        case boolean(Bool)
        case list([RawValue])
        case table([String: String])
    }

    /// One setting as given, with where it came from (for error messages).
    public struct Setting: Sendable {
        public var key: String
        public var value: RawValue
        public var source: String
        public init(key: String, value: RawValue, source: String) { self.key = key; self.value = value; self.source = source }
    }

    /// Builds the configuration: defaults, then the file, then environment, then flags.
    /// - Throws: `ConfigurationError` naming the file or key at fault.
    public static func load(file: String?, environment: [String: String], flags: [Setting]) throws(ConfigurationError) -> AgentConfiguration {
        var configuration = AgentConfiguration()
        var settings: [Setting] = []
        if let file { settings += try fileSettings(file) }
        settings += try environmentSettings(environment)
        settings += flags
        for setting in settings {
            guard let key = keys.first(where: { $0.name == setting.key }) else {
                throw ConfigurationError("unknown key \"\(setting.key)\" in \(setting.source); known keys: \(keys.map(\.name).joined(separator: ", "))")
            }
            try key.apply(setting, &configuration)
        }
        try configuration.validate()
        return configuration
    }

    static func fileSettings(_ path: String) throws(ConfigurationError) -> [Setting] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            let reason = access(path, F_OK) != 0 ? "it does not exist" : "it cannot be read (\(String(cString: strerror(access(path, R_OK) != 0 ? errno : EIO))))"
            throw ConfigurationError("cannot read the configuration file \(path): \(reason)")
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigurationError("\(path): \(error.description) at line \(error.source.begin.line), column \(error.source.begin.column)")
        } catch {
            throw ConfigurationError("\(path): not valid TOML (\(error))")
        }
        var settings: [Setting] = []
        try flatten(table, prefix: "", file: path, into: &settings)
        return settings
    }

    /// `[section] key = v` becomes `section.key`; `[labels]` stays a table.
    private static func flatten(_ table: TOMLTable, prefix: String, file: String, into settings: inout [Setting]) throws(ConfigurationError) {
        for name in table.keys.sorted() {
            guard let value = table[name] else { continue }
            let key = prefix + name
            if let inner = value.table {
                if keys.contains(where: { $0.name == key }) {
                    var strings: [String: String] = [:]
                    for innerKey in inner.keys {
                        guard let text = inner[innerKey]?.string else {
                            throw ConfigurationError("\(file): \(key).\(innerKey) must be a string")
                        }
                        strings[innerKey] = text
                    }
                    settings.append(Setting(key: key, value: .table(strings), source: file))
                } else {
                    try flatten(inner, prefix: key + ".", file: file, into: &settings)
                }
                continue
            }
            settings.append(Setting(key: key, value: try raw(value, key: key, file: file), source: file))
        }
    }

    private static func raw(_ value: TOMLValueConvertible, key: String, file: String) throws(ConfigurationError) -> RawValue {
        if let b = value.bool { return .boolean(b) }
        if let i = value.int { return .integer(i) }
        if let d = value.double { return .number(d) }
        if let s = value.string { return .text(s) }
        if let array = value.array {
            var items: [RawValue] = []
            for item in array { items.append(try raw(item, key: key, file: file)) }
            return .list(items)
        }
        throw ConfigurationError("\(file): \(key) has a value of a type Flare does not read here")
    }

    /// `FLARE_SAMPLING_FREQUENCY=499` sets `sampling.frequency`. Unknown
    /// `FLARE_AGENT_…`, `FLARE_SAMPLING_…`, `FLARE_TARGETS_…`, `FLARE_SHIPPING_…`
    /// and `FLARE_WINDOW_…` variables are errors (typos should not pass silently).
    static func environmentSettings(_ environment: [String: String]) throws(ConfigurationError) -> [Setting] {
        let sections = ["AGENT", "SAMPLING", "TARGETS", "SHIPPING", "WINDOW"]
        var settings: [Setting] = []
        for (name, value) in environment.sorted(by: { $0.key < $1.key }) where name.hasPrefix("FLARE_") {
            let rest = name.dropFirst(6)
            guard let section = sections.first(where: { rest.hasPrefix($0 + "_") }) else { continue }
            let field = rest.dropFirst(section.count + 1).lowercased()
            let key = section.lowercased() + "." + field
            if key == "agent.labels" {
                settings.append(Setting(key: key, value: .table(try parseLabels(value, source: "environment variable \(name)")),
                                        source: "environment variable \(name)"))
            } else {
                settings.append(Setting(key: key, value: .text(value), source: "environment variable \(name)"))
            }
        }
        return settings
    }

    /// `k=v,k2=v2`.
    public static func parseLabels(_ text: String, source: String) throws(ConfigurationError) -> [String: String] {
        var labels: [String: String] = [:]
        for part in text.split(separator: ",") where !part.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let eq = part.firstIndex(of: "=") else {
                throw ConfigurationError("\(source): label \"\(part)\" is not NAME=VALUE")
            }
            labels[String(part[..<eq]).trimmingCharacters(in: .whitespaces)] = String(part[part.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
        }
        return labels
    }

    func validate() throws(ConfigurationError) {
        guard storeURL != nil || pyroscopeURL != nil else {
            throw ConfigurationError("nothing to ship to: set shipping.store_url (--store) or shipping.pyroscope_url (--pyroscope)")
        }
        if let pattern = processPattern { try Self.checkRegex(pattern, key: "targets.process_regex") }
        for pattern in excludePatterns { try Self.checkRegex(pattern, key: "targets.exclude") }
        for name in labels.keys where name.isEmpty || !name.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0 == ".") }) {
            throw ConfigurationError("agent.labels: label name \"\(name)\" may use only letters, digits, _ and .")
        }
    }

    static func checkRegex(_ pattern: String, key: String) throws(ConfigurationError) {
        do { _ = try Regex(pattern) } catch {
            throw ConfigurationError("\(key): \"\(pattern)\" is not a valid regular expression (\(error))")
        }
    }
}
