import ArgumentParser

@main
struct Flare: ParsableCommand {
    static func main() {
        DebuginfodEnvironment.takeFromProcess()
        main(nil)
    }

    static let configuration = CommandConfiguration(
        commandName: "flare",
        abstract: "A continuous CPU profiler for Linux whose samples know which trace span was running.",
        discussion: """
            Start with `flare record -- ./my-program` to see where a program spends its CPU.
            """,
        version: BuildInfo.versionLine,
        subcommands: [Record.self, Agent.self, Store.self, Export.self, Diff.self, Convert.self, UnwindTableCommand.self, DebuginfodFind.self]
    )
}

extension BuildInfo {
    /// What `flare --version` prints: the version and the commit built from.
    static var versionLine: String {
        "flare \(version) (commit \(commit ?? "unknown: built outside a git checkout"))"
    }
}
