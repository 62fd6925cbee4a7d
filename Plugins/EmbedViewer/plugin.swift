import Foundation
import PackagePlugin

/// Compiles the viewer's files (viewer/ at the package root) into the target,
/// so that `flare store` serves them and `flare export` inlines them with no
/// file beside the binary. Rebuilt whenever a file of viewer/ changes.
@main
struct EmbedViewer: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let viewer = context.package.directoryURL.appending(path: "viewer")
        let names = try FileManager.default.contentsOfDirectory(atPath: viewer.path).filter { name in
            ["html", "js", "css", "svg", "json"].contains { name.hasSuffix("." + $0) }
        }.sorted()
        let inputs = names.map { viewer.appending(path: $0) }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedViewerFiles.swift")
        return [.buildCommand(
            displayName: "Embedding the viewer's \(names.count) files",
            executable: try context.tool(named: "flare-embed").url,
            arguments: ["viewer", output.path] + inputs.map(\.path),
            inputFiles: inputs,
            outputFiles: [output]
        )]
    }
}
