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
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        // The store: HTTP, SQLite, PostgreSQL, lifecycle.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // The agent's configuration file.
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        // Uploads and store queries: HTTP(S) on NIO, without Foundation's URLSession and libcurl.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // C at the edges: what Swift cannot call directly.
        .target(name: "CPerfEvent"),
        .target(name: "CDemangle", linkerSettings: [.linkedLibrary("stdc++")]),
        // The C writer of the context ABI (clients/c/flare_context.h), compiled once.
        .target(name: "CFlareContext"),
        // process_vm_readv, which Glibc's Swift module does not export.
        .target(name: "CRemoteMemory"),
        // openat2, which has no glibc wrapper: files a profiled process names, resolved inside its root.
        .target(name: "CTargetFiles"),
        // libdw's own unwinder over a copied stack: the slow path behind the compact tables.
        .target(name: "CDwflUnwind", linkerSettings: [.linkedLibrary("dw"), .linkedLibrary("elf")]),
        .systemLibrary(name: "CElfutils", pkgConfig: "libdw", providers: [.apt(["libdw-dev", "libelf-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // elfutils' debuginfod client, run only in the `flare debuginfod-find` helper process.
        .systemLibrary(name: "CDebuginfod", pkgConfig: "libdebuginfod", providers: [.apt(["libdebuginfod-dev"])]),

        // The profile model and its codecs: no syscalls.
        .target(name: "FlareProfile", dependencies: ["CZlib"]),
        // perf_event sessions, ring buffers and record parsing.
        .target(name: "FlareSampler", dependencies: ["CPerfEvent"]),
        // Which process maps which file where: MMAP2/COMM/FORK/EXIT and /proc seeding.
        .target(name: "FlareProcesses", dependencies: ["FlareSampler", "FlareTargetFiles"]),
        // Turning a sample into a list of frames.
        .target(name: "FlareUnwind", dependencies: ["CElfutils", "CDwflUnwind", "FlareSampler", "FlareProcesses", "FlareSymbols", "FlareTargetFiles"]),
        // Frames to names: ELF symbols, kallsyms, demangling.
        .target(name: "FlareSymbols", dependencies: ["CElfutils", "CDemangle", "FlareTargetFiles", "FlareProfile"]),
        // Opening what a profiled process names without letting it hang, blind or read through the agent.
        .target(name: "FlareTargetFiles", dependencies: ["CTargetFiles"]),
        // The context ABI's writer for Swift: publish the resource, attach and detach spans.
        .target(name: "FlareContext", dependencies: ["CFlareContext"]),
        // swift-distributed-tracing integration: publishes the span each piece of work runs in.
        .target(
            name: "FlareTracing",
            dependencies: ["FlareContext", .product(name: "Tracing", package: "swift-distributed-tracing")]
        ),
        // The context ABI's reader logic: validate, select, decode. Pure, no syscalls.
        .target(name: "FlareContextReader", dependencies: ["FlareProfile"]),
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
        // Call trees for flame graphs and diffs, and the JSON the viewer reads. Pure.
        .target(name: "FlareFlameGraph", dependencies: ["FlareProfile"]),
        // The viewer's files on disk, and one self-contained HTML file with a document inlined.
        .target(name: "FlareViewer", dependencies: ["FlareFlameGraph", "FlareProfile"], plugins: ["EmbedViewer"]),
        // The store: ingest, storage (SQLite, PostgreSQL), queries, OTLP spans, HTTP routes.
        .target(
            name: "FlareStore",
            dependencies: [
                "FlareProfile", "FlareFlameGraph", "FlareViewer", "FlareSymbols",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // The always-on host agent: windows, disk spool, upload, configuration, self-metrics.
        .target(
            name: "FlareAgent",
            dependencies: [
                "FlareRecorder", "FlareProcesses", "FlareProfile", "FlareSymbols", "FlareTargetFiles", "CZlib",
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        .executableTarget(
            name: "flare",
            dependencies: [
                "FlareRecorder", "FlareProfile", "FlareFlameGraph", "FlareStore", "FlareAgent", "FlareViewer", "FlareSymbols", "CDebuginfod",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            plugins: ["EmbedBuildInfo"]
        ),
        // Build time: the viewer's files and the version compiled into the binary.
        .executableTarget(name: "flare-embed", path: "Sources/flare-embed"),
        .plugin(name: "EmbedViewer", capability: .buildTool(), dependencies: ["flare-embed"]),
        .plugin(name: "EmbedBuildInfo", capability: .buildTool(), dependencies: ["flare-embed"]),
        // Ground-truth workload for the span-label tests: Swift threads and tasks publishing spans.
        .executableTarget(
            name: "SpanWorkload",
            dependencies: ["FlareContext", "FlareTracing", .product(name: "Tracing", package: "swift-distributed-tracing")],
            path: "Tests/SpanWorkload",
            // Top-level code sharing globals with threads, as workloads do.
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .testTarget(
            name: "FlareTests",
            dependencies: [
                "FlareProfile", "FlareSampler", "FlareProcesses", "FlareSymbols", "FlareRecorder",
                "FlareContextReader", "FlareSpanReader", "FlareFlameGraph", "FlareAgent", "FlareTargetFiles",
            ],
            exclude: ["Workloads", "Fixtures"]
        ),
        .testTarget(
            name: "FlareStoreTests",
            dependencies: [
                "FlareStore", "FlareProfile", "FlareFlameGraph", "FlareViewer",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            exclude: ["Clients"]
        ),
        // The fuzz targets, replaying their corpus; scripts/fuzz builds them with libFuzzer and ASan (Fuzz/README.md).
        .executableTarget(
            name: "FlareFuzz",
            dependencies: ["FlareProfile", "FlareContextReader", "FlareSampler", "FlareSymbols", "FlareUnwind"],
            path: "Fuzz",
            exclude: ["corpus", "README.md", "make-corpus"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
