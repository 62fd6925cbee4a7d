import FlareProfile
import FlareSymbols
import FlareUnwind

/// Turns counted stacks into a pprof-shaped `Profile`: one mapping per module,
/// one location per distinct frame, symbolized once each.
struct ProfileAssembler {
    var builder: ProfileBuilder
    let registry: ModuleRegistry
    let symbolizer: Symbolizer
    private var mappingIDs: [Int32: UInt64] = [:]
    private var locationIDs: [FrameKey: UInt64] = [:]

    init(registry: ModuleRegistry, symbolizer: Symbolizer, periodNanos: Int64, timeNanos: Int64, durationNanos: Int64) {
        self.registry = registry
        self.symbolizer = symbolizer
        builder = .cpuProfile(periodNanos: periodNanos, timeNanos: timeNanos, durationNanos: durationNanos)
    }

    mutating func add(_ aggregator: StackAggregator, only pids: Set<Int32>? = nil,
                      extraLabels: (StackAggregator.Key) -> [(String, String)] = { _ in [] }) {
        // Sorted so that the same input always yields the same file.
        let keys = aggregator.stacks.keys.filter { pids?.contains($0.pid) ?? true }.sorted { ($0.pid, $0.tid, $0.frames.count) < ($1.pid, $1.tid, $1.frames.count) }
        for key in keys {
            let value = aggregator.stacks[key]!
            let locations = key.frames.map { location(for: $0) }
            var labels = [
                builder.label("pid", String(key.pid)),
                builder.label("thread_id", String(key.tid)),
                builder.label("thread_name", aggregator.threadName(pid: key.pid, tid: key.tid)),
            ]
            for (name, value) in extraLabels(key) { labels.append(builder.label(name, value)) }
            builder.addSample(locationIDs: locations, values: [value.count, value.nanoseconds], labels: labels)
        }
    }

    private mutating func location(for frame: FrameKey) -> UInt64 {
        if let id = locationIDs[frame] { return id }
        let module = registry.modules[Int(frame.module)]
        let mappingID = mapping(for: module)
        var frames: [SourceFrame]
        var address = frame.address
        // Code nothing names: the file and an offset in it (the store names it later, ProfileIngest.unnamedFunctions).
        func unnamedFrame(at offset: UInt64) -> SourceFrame {
            SourceFrame(function: module.displayName + "+0x" + String(offset, radix: 16), file: "", line: 0)
        }
        let unnamed = unnamedFrame(at: frame.address)
        switch module.kind {
        case .kernel:
            frames = [SourceFrame(function: symbolizer.kernelFunction(frame.address) ?? "[kernel]+0x" + String(frame.address, radix: 16),
                                  file: "", line: 0)]
        case .elf(let image):
            // Unnamed: still one function, by the CFI's bounds, where the file has them.
            frames = image.flatMap { symbolizer.frames(in: $0, fileOffset: frame.address) }
                ?? [image.flatMap { symbolizer.functionStart(in: $0, fileOffset: frame.address) }.map(unnamedFrame) ?? unnamed]
            address = module.base &+ frame.address
        case .jit(let pid):
            frames = [symbolizer.jitFunction(pid: pid, address: frame.address).map { SourceFrame(function: $0, file: "", line: 0) } ?? unnamed]
        case .anonymous:
            frames = [unnamed]
        case .marker:
            frames = [SourceFrame(function: UnwoundStack.Truncation.all[Int(frame.address)].rawValue, file: "", line: 0)]
            address = 0
        }
        let lines = frames.map { Profile.Line(functionID: builder.function(name: $0.function, file: $0.file, startLine: $0.startLine), line: $0.line) }
        var flags = mappingFlags[mappingID, default: MappingFlags()]
        flags.named = flags.named || frames.first.map { !$0.function.hasPrefix(module.displayName + "+0x") } ?? false
        flags.files = flags.files || frames.contains { !$0.file.isEmpty }
        flags.lines = flags.lines || frames.contains { $0.line > 0 }
        flags.inlines = flags.inlines || frames.count > 1
        mappingFlags[mappingID] = flags
        let id = builder.location(mappingID: mappingID, address: address, lines: lines)
        locationIDs[frame] = id
        return id
    }

    /// What the symbolized locations of a mapping turned out to have, for
    /// pprof's has_functions / has_filenames / has_line_numbers / has_inline_frames.
    private struct MappingFlags { var named = false, files = false, lines = false, inlines = false }
    private var mappingFlags: [UInt64: MappingFlags] = [:]

    /// The profile, with each mapping's has_* flags set from what was found.
    var profile: Profile {
        var builder = builder
        for (id, flags) in mappingFlags {
            builder.updateMapping(id) { mapping in
                mapping.hasFunctions = flags.named
                mapping.hasFilenames = flags.files
                mapping.hasLineNumbers = flags.lines
                mapping.hasInlineFrames = flags.inlines
            }
        }
        return builder.profile
    }

    private mutating func mapping(for module: Module) -> UInt64 {
        if let id = mappingIDs[module.id] { return id }
        let id = builder.mapping { mapping, builder in
            mapping.filename = builder.intern(module.path)
            mapping.memoryStart = module.base
            mapping.memoryLimit = module.limit
            if case .elf(let image?) = module.kind { mapping.buildID = builder.intern(image.buildIDHex) }
        }
        mappingIDs[module.id] = id
        return id
    }
}
