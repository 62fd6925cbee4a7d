// Field numbers follow the published perftools.profiles schema (profile.proto).

extension Profile {
    /// The uncompressed protobuf encoding.
    public func pprofBytes() -> [UInt8] {
        var w = ProtobufWriter()
        for t in sampleTypes { w.message(1) { $0.valueType(t) } }
        for s in samples {
            w.message(2) { m in
                m.packed(1, s.locationIDs)
                m.packed(2, s.values.map { UInt64(bitPattern: $0) })
                for l in s.labels {
                    m.message(3) { lm in
                        lm.int(1, l.key); lm.int(2, l.str); lm.int(3, l.num); lm.int(4, l.numUnit)
                    }
                }
            }
        }
        for m in mappings {
            w.message(3) { w in
                w.uint(1, m.id); w.uint(2, m.memoryStart); w.uint(3, m.memoryLimit); w.uint(4, m.fileOffset)
                w.int(5, m.filename); w.int(6, m.buildID)
                w.bool(7, m.hasFunctions); w.bool(8, m.hasFilenames)
                w.bool(9, m.hasLineNumbers); w.bool(10, m.hasInlineFrames)
            }
        }
        for l in locations {
            w.message(4) { w in
                w.uint(1, l.id); w.uint(2, l.mappingID); w.uint(3, l.address)
                for line in l.lines { w.message(4) { $0.uint(1, line.functionID); $0.int(2, line.line) } }
            }
        }
        for f in functions {
            w.message(5) { w in
                w.uint(1, f.id); w.int(2, f.name); w.int(3, f.systemName); w.int(4, f.filename); w.int(5, f.startLine)
            }
        }
        // Every string is written, the empty string at index 0 included.
        for s in stringTable { w.string(6, s) }
        w.int(9, timeNanos)
        w.int(10, durationNanos)
        if let p = periodType { w.message(11) { $0.valueType(p) } }
        w.int(12, period)
        w.packed(13, comments.map { UInt64(bitPattern: $0) })
        w.int(14, defaultSampleType)
        return w.bytes
    }

    /// Decodes and validates an uncompressed pprof body.
    public init(pprofBytes bytes: [UInt8]) throws {
        do {
            try self.init(decoding: bytes)
        } catch let error as ProtobufWireError {
            throw ProfileDecodingError(error.description)
        }
    }

    private init(decoding bytes: [UInt8]) throws {
        self.init()
        stringTable = []
        var r = ProtobufFieldReader(bytes[...])
        while let (field, value) = try r.next() {
            switch field {
            case 1: sampleTypes.append(try .decode(value.slice()))
            case 2: samples.append(try .decode(value.slice()))
            case 3: mappings.append(try .decode(value.slice()))
            case 4: locations.append(try .decode(value.slice()))
            case 5: functions.append(try .decode(value.slice()))
            case 6: stringTable.append(String(decoding: try value.slice(), as: UTF8.self))
            case 9: timeNanos = try value.int()
            case 10: durationNanos = try value.int()
            case 11: periodType = try .decode(value.slice())
            case 12: period = try value.int()
            case 13:
                var raw: [UInt64] = []
                try value.appendVarints(to: &raw)
                comments += raw.map { Int64(bitPattern: $0) }
            case 14: defaultSampleType = try value.int()
            default: break
            }
        }
        try validate()
    }

    /// Checks what a reader of this profile relies on: string 0 is empty, every
    /// index and id refers to something that exists, values fit sample types.
    public func validate() throws {
        guard stringTable.first == "" else { throw ProfileDecodingError("string_table[0] must be the empty string") }
        func checkString(_ i: Int64, _ what: String) throws {
            guard i >= 0 && i < stringTable.count else {
                throw ProfileDecodingError("\(what) refers to string \(i), but the table has \(stringTable.count)")
            }
        }
        for t in sampleTypes + (periodType.map { [$0] } ?? []) {
            try checkString(t.type, "a value type"); try checkString(t.unit, "a value type")
        }
        for c in comments { try checkString(c, "a comment") }
        try checkString(defaultSampleType, "default_sample_type")
        var mappingIDs = Set<UInt64>()
        for m in mappings {
            guard m.id != 0, mappingIDs.insert(m.id).inserted else { throw ProfileDecodingError("mapping id \(m.id) is zero or repeated") }
            try checkString(m.filename, "a mapping"); try checkString(m.buildID, "a mapping")
        }
        var functionIDs = Set<UInt64>()
        for f in functions {
            guard f.id != 0, functionIDs.insert(f.id).inserted else { throw ProfileDecodingError("function id \(f.id) is zero or repeated") }
            try checkString(f.name, "a function"); try checkString(f.systemName, "a function"); try checkString(f.filename, "a function")
        }
        var locationIDs = Set<UInt64>()
        for l in locations {
            guard l.id != 0, locationIDs.insert(l.id).inserted else { throw ProfileDecodingError("location id \(l.id) is zero or repeated") }
            guard l.mappingID == 0 || mappingIDs.contains(l.mappingID) else {
                throw ProfileDecodingError("location \(l.id) refers to missing mapping \(l.mappingID)")
            }
            for line in l.lines where !functionIDs.contains(line.functionID) {
                throw ProfileDecodingError("location \(l.id) refers to missing function \(line.functionID)")
            }
        }
        for s in samples {
            guard s.values.count == sampleTypes.count else {
                throw ProfileDecodingError("a sample has \(s.values.count) values for \(sampleTypes.count) sample types")
            }
            for id in s.locationIDs where !locationIDs.contains(id) {
                throw ProfileDecodingError("a sample refers to missing location \(id)")
            }
            for l in s.labels { try checkString(l.key, "a label"); try checkString(l.str, "a label"); try checkString(l.numUnit, "a label") }
        }
    }
}

extension ProtobufWriter {
    fileprivate mutating func valueType(_ t: Profile.ValueType) { int(1, t.type); int(2, t.unit) }
}

extension Profile.ValueType {
    fileprivate static func decode(_ bytes: ArraySlice<UInt8>) throws -> Self {
        var t = Self(type: 0, unit: 0)
        var r = ProtobufFieldReader(bytes)
        while let (field, value) = try r.next() {
            switch field {
            case 1: t.type = try value.int()
            case 2: t.unit = try value.int()
            default: break
            }
        }
        return t
    }
}

extension Profile.Sample {
    fileprivate static func decode(_ bytes: ArraySlice<UInt8>) throws -> Self {
        var s = Self(locationIDs: [], values: [])
        var r = ProtobufFieldReader(bytes)
        var values: [UInt64] = []
        while let (field, value) = try r.next() {
            switch field {
            case 1: try value.appendVarints(to: &s.locationIDs)
            case 2: try value.appendVarints(to: &values)
            case 3:
                var label = Profile.Label(key: 0)
                var lr = ProtobufFieldReader(try value.slice())
                while let (f, v) = try lr.next() {
                    switch f {
                    case 1: label.key = try v.int()
                    case 2: label.str = try v.int()
                    case 3: label.num = try v.int()
                    case 4: label.numUnit = try v.int()
                    default: break
                    }
                }
                s.labels.append(label)
            default: break
            }
        }
        s.values = values.map { Int64(bitPattern: $0) }
        return s
    }
}

extension Profile.Mapping {
    fileprivate static func decode(_ bytes: ArraySlice<UInt8>) throws -> Self {
        var m = Self(id: 0)
        var r = ProtobufFieldReader(bytes)
        while let (field, value) = try r.next() {
            switch field {
            case 1: m.id = try value.uint()
            case 2: m.memoryStart = try value.uint()
            case 3: m.memoryLimit = try value.uint()
            case 4: m.fileOffset = try value.uint()
            case 5: m.filename = try value.int()
            case 6: m.buildID = try value.int()
            case 7: m.hasFunctions = try value.uint() != 0
            case 8: m.hasFilenames = try value.uint() != 0
            case 9: m.hasLineNumbers = try value.uint() != 0
            case 10: m.hasInlineFrames = try value.uint() != 0
            default: break
            }
        }
        return m
    }
}

extension Profile.Location {
    fileprivate static func decode(_ bytes: ArraySlice<UInt8>) throws -> Self {
        var l = Self(id: 0)
        var r = ProtobufFieldReader(bytes)
        while let (field, value) = try r.next() {
            switch field {
            case 1: l.id = try value.uint()
            case 2: l.mappingID = try value.uint()
            case 3: l.address = try value.uint()
            case 4:
                var line = Profile.Line(functionID: 0)
                var lr = ProtobufFieldReader(try value.slice())
                while let (f, v) = try lr.next() {
                    switch f {
                    case 1: line.functionID = try v.uint()
                    case 2: line.line = try v.int()
                    default: break
                    }
                }
                l.lines.append(line)
            default: break
            }
        }
        return l
    }
}

extension Profile.Function {
    fileprivate static func decode(_ bytes: ArraySlice<UInt8>) throws -> Self {
        var f = Self(id: 0)
        var r = ProtobufFieldReader(bytes)
        while let (field, value) = try r.next() {
            switch field {
            case 1: f.id = try value.uint()
            case 2: f.name = try value.int()
            case 3: f.systemName = try value.int()
            case 4: f.filename = try value.int()
            case 5: f.startLine = try value.int()
            default: break
            }
        }
        return f
    }
}
