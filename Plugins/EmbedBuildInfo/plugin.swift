import Foundation
import PackagePlugin

/// Compiles VERSION and the commit HEAD names into the target, for
/// `flare --version`. The git files HEAD resolves through are inputs, so a new
/// commit or a checkout of another branch rebuilds it.
@main
struct EmbedBuildInfo: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        let git = root.appending(path: ".git")
        var inputs = [root.appending(path: "VERSION")]
        if let head = try? String(contentsOf: git.appending(path: "HEAD"), encoding: .utf8) {
            inputs.append(git.appending(path: "HEAD"))
            if head.hasPrefix("ref: ") {
                inputs.append(git.appending(path: head.dropFirst(5).trimmingCharacters(in: .whitespacesAndNewlines)))
            }
            inputs.append(git.appending(path: "packed-refs"))
        }
        let existing = inputs.filter { FileManager.default.fileExists(atPath: $0.path) }
        let output = context.pluginWorkDirectoryURL.appending(path: "BuildInfo.swift")
        return [.buildCommand(
            displayName: "Recording the version and commit",
            executable: try context.tool(named: "flare-embed").url,
            arguments: ["build-info", output.path, root.path],
            inputFiles: existing,
            outputFiles: [output]
        )]
    }
}
