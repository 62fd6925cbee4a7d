/// Builds a `Profile` while interning strings, functions, mappings and locations,
/// so each appears once however many samples refer to it.
public struct ProfileBuilder {
    public private(set) var profile = Profile()
    private var stringIndex: [String: Int64] = ["": 0]
    private var functionIndex: [FunctionKey: UInt64] = [:]
    private var locationIndex: [LocationKey: UInt64] = [:]

    private struct FunctionKey: Hashable { var name: String; var systemName: String; var file: String }
    private struct LocationKey: Hashable { var mappingID: UInt64; var address: UInt64; var lines: [Profile.Line] }

    /// A profile of CPU samples, as DESIGN.md's pprof conventions ask:
    /// `samples/count` and `cpu/nanoseconds`, period in `cpu/nanoseconds`.
    public static func cpuProfile(periodNanos: Int64, timeNanos: Int64, durationNanos: Int64) -> ProfileBuilder {
        var builder = ProfileBuilder()
        builder.profile.sampleTypes = [
            .init(type: builder.intern("samples"), unit: builder.intern("count")),
            .init(type: builder.intern("cpu"), unit: builder.intern("nanoseconds")),
        ]
        builder.profile.periodType = .init(type: builder.intern("cpu"), unit: builder.intern("nanoseconds"))
        builder.profile.period = periodNanos
        builder.profile.timeNanos = timeNanos
        builder.profile.durationNanos = durationNanos
        builder.profile.defaultSampleType = builder.intern("cpu")
        return builder
    }

    public init() {}

    public mutating func intern(_ string: String) -> Int64 {
        if let index = stringIndex[string] { return index }
        let index = Int64(profile.stringTable.count)
        profile.stringTable.append(string)
        stringIndex[string] = index
        return index
    }

    public mutating func function(name: String, systemName: String? = nil, file: String = "", startLine: Int64 = 0) -> UInt64 {
        let key = FunctionKey(name: name, systemName: systemName ?? name, file: file)
        if let id = functionIndex[key] { return id }
        var function = Profile.Function(id: UInt64(profile.functions.count + 1))
        function.name = intern(name)
        function.systemName = intern(key.systemName)
        function.filename = intern(file)
        function.startLine = startLine
        profile.functions.append(function)
        functionIndex[key] = function.id
        return function.id
    }

    public mutating func mapping(_ fill: (inout Profile.Mapping, inout ProfileBuilder) -> Void) -> UInt64 {
        var mapping = Profile.Mapping(id: UInt64(profile.mappings.count + 1))
        fill(&mapping, &self)
        profile.mappings.append(mapping)
        return mapping.id
    }

    /// Changes a mapping already added (its flags are known only once its
    /// locations have been symbolized).
    public mutating func updateMapping(_ id: UInt64, _ update: (inout Profile.Mapping) -> Void) {
        guard id >= 1 && id <= UInt64(profile.mappings.count) else { return }
        update(&profile.mappings[Int(id - 1)])
    }

    public mutating func location(mappingID: UInt64, address: UInt64, lines: [Profile.Line]) -> UInt64 {
        let key = LocationKey(mappingID: mappingID, address: address, lines: lines)
        if let id = locationIndex[key] { return id }
        var location = Profile.Location(id: UInt64(profile.locations.count + 1))
        location.mappingID = mappingID
        location.address = address
        location.lines = lines
        profile.locations.append(location)
        locationIndex[key] = location.id
        return location.id
    }

    public mutating func label(_ key: String, _ value: String) -> Profile.Label {
        Profile.Label(key: intern(key), str: intern(value))
    }

    public mutating func addSample(locationIDs: [UInt64], values: [Int64], labels: [Profile.Label]) {
        profile.samples.append(.init(locationIDs: locationIDs, values: values, labels: labels))
    }

    public mutating func addComment(_ text: String) {
        profile.comments.append(intern(text))
    }
}
