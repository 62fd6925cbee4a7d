// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "flare",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "flare", targets: ["flare"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // C at the edges: what Swift cannot call directly.
        .target(name: "CPerfEvent"),
        .target(name: "CDemangle", linkerSettings: [.linkedLibrary("stdc++")]),
        // process_vm_readv, which Glibc's Swift module does not export.
        .target(name: "CRemoteMemory"),
        .systemLibrary(name: "CElfutils", pkgConfig: "libdw", providers: [.apt(["libdw-dev", "libelf-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),

        // The profile model and its codecs: no syscalls.
        .target(name: "FlareProfile", dependencies: ["CZlib"]),
        // perf_event sessions, ring buffers and record parsing.
        .target(name: "FlareSampler", dependencies: ["CPerfEvent"]),
        // Which process maps which file where: MMAP2/COMM/FORK/EXIT and /proc seeding.
        .target(name: "FlareProcesses", dependencies: ["FlareSampler"]),
        // Turning a sample into a list of frames.
        .target(name: "FlareUnwind", dependencies: ["CElfutils", "FlareSampler", "FlareProcesses"]),
        // Frames to names: ELF symbols, kallsyms, demangling.
        .target(name: "FlareSymbols", dependencies: ["CElfutils", "CDemangle"]),
        // The context ABI's reader logic: validate, select, decode. Pure, no syscalls.
        .target(name: "FlareContextReader"),
        // Reads span context out of traced processes: /proc and process_vm_readv.
        .target(name: "FlareSpanReader", dependencies: ["FlareContextReader", "FlareSampler", "CRemoteMemory"]),
        // The recording pipeline shared by `flare record` and, later, the agent.
        .target(
            name: "FlareRecorder",
            dependencies: [
                "FlareSampler", "FlareProcesses", "FlareUnwind", "FlareSymbols", "FlareProfile",
                "FlareContextReader", "FlareSpanReader",
            ]
        ),
        .executableTarget(
            name: "flare",
            dependencies: [
                "FlareRecorder", "FlareProfile",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "FlareTests",
            dependencies: [
                "FlareProfile", "FlareSampler", "FlareProcesses", "FlareSymbols", "FlareRecorder",
                "FlareContextReader", "FlareSpanReader",
            ],
            exclude: ["Workloads"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
