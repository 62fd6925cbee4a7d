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

    mutating func add(_ aggregator: StackAggregator, extraLabels: (StackAggregator.Key) -> [(String, String)] = { _ in [] }) {
        // Sorted so that the same input always yields the same file.
        let keys = aggregator.stacks.keys.sorted { ($0.pid, $0.tid, $0.frames.count) < ($1.pid, $1.tid, $1.frames.count) }
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

    var profile: Profile { builder.profile }

    private mutating func location(for frame: FrameKey) -> UInt64 {
        if let id = locationIDs[frame] { return id }
        let module = registry.modules[Int(frame.module)]
        let mappingID = mapping(for: module)
        let name: String
        var address = frame.address
        switch module.kind {
        case .kernel:
            name = symbolizer.kernelFunction(frame.address) ?? "[kernel]+0x" + String(frame.address, radix: 16)
        case .elf(let image):
            name = image.flatMap { symbolizer.function(in: $0, fileOffset: frame.address) }
                ?? module.displayName + "+0x" + String(frame.address, radix: 16)
            address = module.base &+ frame.address
        case .anonymous:
            name = module.displayName + "+0x" + String(frame.address, radix: 16)
        case .marker:
            name = UnwoundStack.Truncation.all[Int(frame.address)].rawValue
            address = 0
        }
        let function = builder.function(name: name)
        let id = builder.location(mappingID: mappingID, address: address, lines: [.init(functionID: function)])
        locationIDs[frame] = id
        return id
    }

    private mutating func mapping(for module: Module) -> UInt64 {
        if let id = mappingIDs[module.id] { return id }
        let id = builder.mapping { mapping, builder in
            mapping.filename = builder.intern(module.path)
            mapping.memoryStart = module.base
            mapping.memoryLimit = module.limit
            switch module.kind {
            case .elf(let image?):
                mapping.buildID = builder.intern(image.buildIDHex)
                mapping.hasFunctions = !image.symbols.isEmpty
            case .kernel:
                mapping.hasFunctions = true
            default:
                break
            }
        }
        mappingIDs[module.id] = id
        return id
    }
}
