import ArgumentParser
import Dispatch
import FlareAgent
import FlareRecorder
import Glibc
import Logging

struct Agent: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Profile every process on this host, always, and ship the profiles to a store.",
        discussion: """
            Samples every CPU (99 Hz by default), unwinds and symbolizes on the host, labels samples with \
            the span their thread was serving, and every window (10 s) sends one pprof profile per service \
            to the store. Windows wait in a disk spool until the store acknowledges them, so a store outage \
            or an agent restart loses nothing. SIGTERM flushes the open window and exits; SIGHUP reloads \
            the configuration. Self-metrics are on http://127.0.0.1:4101/metrics.

            Settings come from the embedded defaults, then --config FILE (TOML; by default \
            /etc/flare/agent.toml when it exists, as the Debian package installs it), then FLARE_* \
            environment variables, then flags. Keys (environment variable in brackets):
            \(AgentConfiguration.keysHelp)

            Examples:
              flare agent                                   # ship to http://127.0.0.1:4100
              flare agent --config /etc/flare/agent.toml
              flare agent --store http://flare-store:4100 --process-regex '^(checkout|payments)$'
              flare agent --print-config                    # show the effective settings and exit
            """
    )

    @Option(name: .customLong("config"), help: "A TOML configuration file (default: \(Self.installedConfigFile) if it exists; \"\" for none).")
    var configFile: String?

    /// The package's conffile: an installed agent reads it without being told.
    static let installedConfigFile = "/etc/flare/agent.toml"

    /// The file the settings are read from, if any.
    var effectiveConfigFile: String? {
        guard let configFile else { return access(Self.installedConfigFile, F_OK) == 0 ? Self.installedConfigFile : nil }
        return configFile.isEmpty ? nil : configFile
    }

    @Option(name: .customLong("store"), help: "The Flare store URL (\"\" for none).")
    var storeURL: String?

    @Option(name: .customLong("pyroscope"), help: "Also send to this Pyroscope-compatible server.")
    var pyroscopeURL: String?

    // Unconditional, so that `-F -5` reaches the range check and its message.
    @Option(name: [.customShort("F"), .customLong("frequency")], parsing: .unconditional, help: "Samples per second per CPU.")
    var frequency: String?

    @Option(name: .customLong("call-graph"), help: "dwarf or fp.")
    var callGraph: String?

    @Option(name: .customLong("window"), help: "Window length: 10s, 1m.")
    var window: String?

    @Option(name: .customLong("spool-dir"), help: "Spool directory.")
    var spoolDirectory: String?

    @Option(name: .customLong("spool-max-bytes"), help: "Spool size bound: 256MiB.")
    var spoolMaxBytes: String?

    @Option(name: .customLong("metrics-address"), help: "HOST:PORT of /metrics (\"\" for none).")
    var metricsAddress: String?

    @Option(name: .customLong("pid"), help: "Only this process (repeatable).")
    var pids: [String] = []

    @Option(name: .customLong("process-regex"), help: "Only processes whose name or executable matches.")
    var processRegex: String?

    @Option(name: .customLong("cgroup"), help: "Only processes in this cgroup (or below).")
    var cgroup: String?

    @Option(name: .customLong("exclude"), help: "Never processes matching this regex (repeatable).")
    var exclude: [String] = []

    @Option(name: .customLong("host-name"), help: "The host.name label.")
    var hostName: String?

    @Option(name: .customLong("label"), help: "An extra resource label NAME=VALUE (repeatable).")
    var labels: [String] = []

    @Flag(name: .customLong("print-config"), help: "Print the effective configuration and exit.")
    var printConfig = false

    func run() throws {
        let environment = Environment.variables
        let flags = flagSettings()
        let configuration: AgentConfiguration
        do {
            configuration = try AgentConfiguration.load(file: effectiveConfigFile, environment: environment, flags: flags)
        } catch {
            printError("\(error)")
            throw ExitCode.failure
        }
        if printConfig {
            print(configuration.describe())
            return
        }
        let logger = Daemon.logger("flare.agent", level: Logger.Level(rawValue: configuration.logLevel) ?? .info)
        let sources = AgentRunner.Sources(file: effectiveConfigFile, environment: environment, flags: flags)
        try Daemon.run {
            try await AgentRunner.run(configuration, sources: sources, logger: logger)
        }
    }

    private func flagSettings() -> [AgentConfiguration.Setting] {
        var settings: [AgentConfiguration.Setting] = []
        func add(_ key: String, _ value: String?, _ flag: String) {
            if let value { settings.append(.init(key: key, value: .text(value), source: "the \(flag) flag")) }
        }
        add("shipping.store_url", storeURL, "--store")
        add("shipping.pyroscope_url", pyroscopeURL, "--pyroscope")
        add("sampling.frequency", frequency, "--frequency")
        add("sampling.call_graph", callGraph, "--call-graph")
        add("window.length", window, "--window")
        add("shipping.spool_dir", spoolDirectory, "--spool-dir")
        add("shipping.spool_max_bytes", spoolMaxBytes, "--spool-max-bytes")
        add("agent.metrics_address", metricsAddress, "--metrics-address")
        add("targets.pids", pids.isEmpty ? nil : pids.joined(separator: ","), "--pid")
        add("targets.process_regex", processRegex, "--process-regex")
        add("targets.cgroup", cgroup, "--cgroup")
        if !exclude.isEmpty { settings.append(.init(key: "targets.exclude", value: .list(exclude.map { .text($0) }), source: "the --exclude flag")) }
        add("agent.host_name", hostName, "--host-name")
        if !labels.isEmpty {
            var table: [String: String] = [:]
            for label in labels {
                if let eq = label.firstIndex(of: "=") { table[String(label[..<eq])] = String(label[label.index(after: eq)...]) } else { table[label] = "" }
            }
            settings.append(.init(key: "agent.labels", value: .table(table), source: "the --label flag"))
        }
        return settings
    }
}
