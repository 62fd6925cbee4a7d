import ArgumentParser

@main
struct Flare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flare",
        abstract: "A continuous CPU profiler for Linux whose samples know which trace span was running.",
        discussion: """
            Start with `flare record -- ./my-program` to see where a program spends its CPU.
            """,
        subcommands: [Record.self, Agent.self, Store.self, Export.self, Diff.self, Convert.self, UnwindTableCommand.self]
    )
}
