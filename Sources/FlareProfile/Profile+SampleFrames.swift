extension Profile {
    /// Calls `body` with every sample and its frames (leaf first, inlined calls
    /// expanded), building the id lookups once for the whole profile.
    public func forEachSampleFrames(_ body: (Sample, [Frame]) throws -> Void) rethrows {
        let locations = locationLookup()
        let functions = functionLookup()
        for sample in samples {
            try body(sample, frames(of: sample, locations: locations, functions: functions))
        }
    }

    /// The value of sample type `type` with unit `unit`, if the profile has one.
    public func valueIndex(type: String, unit: String) -> Int? {
        sampleTypes.firstIndex { string($0.type) == type && string($0.unit) == unit }
    }

    /// The string of a sample label, or nil.
    public func labelString(_ sample: Sample, key: String) -> String? {
        for label in sample.labels where string(label.key) == key && label.str != 0 { return string(label.str) }
        return nil
    }
}
