/// A profile in the shape of pprof's `perftools.profiles.Profile`: strings are
/// stored once in `stringTable` and referenced by index everywhere else.
///
/// This module holds the model and its codecs only; it makes no syscalls.
public struct Profile: Equatable, Sendable {
    public struct ValueType: Equatable, Sendable {
        public var type: Int64
        public var unit: Int64
        public init(type: Int64, unit: Int64) { self.type = type; self.unit = unit }
    }

    public struct Label: Equatable, Sendable {
        public var key: Int64
        public var str: Int64
        public var num: Int64
        public var numUnit: Int64
        public init(key: Int64, str: Int64 = 0, num: Int64 = 0, numUnit: Int64 = 0) {
            self.key = key; self.str = str; self.num = num; self.numUnit = numUnit
        }
    }

    public struct Sample: Equatable, Sendable {
        /// Leaf first.
        public var locationIDs: [UInt64]
        public var values: [Int64]
        public var labels: [Label]
        public init(locationIDs: [UInt64], values: [Int64], labels: [Label] = []) {
            self.locationIDs = locationIDs; self.values = values; self.labels = labels
        }
    }

    public struct Mapping: Equatable, Sendable {
        public var id: UInt64
        public var memoryStart: UInt64 = 0
        public var memoryLimit: UInt64 = 0
        public var fileOffset: UInt64 = 0
        public var filename: Int64 = 0
        public var buildID: Int64 = 0
        public var hasFunctions = false
        public var hasFilenames = false
        public var hasLineNumbers = false
        public var hasInlineFrames = false
        public init(id: UInt64) { self.id = id }
    }

    public struct Line: Hashable, Sendable {
        public var functionID: UInt64
        public var line: Int64
        public init(functionID: UInt64, line: Int64 = 0) { self.functionID = functionID; self.line = line }
    }

    public struct Location: Equatable, Sendable {
        public var id: UInt64
        public var mappingID: UInt64 = 0
        public var address: UInt64 = 0
        /// Innermost (inlined) function first, the physical caller last.
        public var lines: [Line] = []
        public init(id: UInt64) { self.id = id }
    }

    public struct Function: Equatable, Sendable {
        public var id: UInt64
        public var name: Int64 = 0
        public var systemName: Int64 = 0
        public var filename: Int64 = 0
        public var startLine: Int64 = 0
        public init(id: UInt64) { self.id = id }
    }

    public var sampleTypes: [ValueType] = []
    public var samples: [Sample] = []
    public var mappings: [Mapping] = []
    public var locations: [Location] = []
    public var functions: [Function] = []
    public var stringTable: [String] = [""]
    public var timeNanos: Int64 = 0
    public var durationNanos: Int64 = 0
    public var periodType: ValueType?
    public var period: Int64 = 0
    public var comments: [Int64] = []
    public var defaultSampleType: Int64 = 0

    public init() {}

    public func string(_ index: Int64) -> String {
        index >= 0 && index < stringTable.count ? stringTable[Int(index)] : ""
    }
}
