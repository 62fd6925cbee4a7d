import FlareProfile
import Testing

@Suite("pprof codec")
struct ProfileCodecTests {
    /// A small profile: main → a → b (leaf), main → c, with labels.
    static func sampleProfile() -> Profile {
        var builder = ProfileBuilder.cpuProfile(periodNanos: 10_101_010, timeNanos: 1_700_000_000_000_000_000, durationNanos: 2_000_000_000)
        let mapping = builder.mapping { m, b in
            m.filename = b.intern("/usr/bin/demo")
            m.buildID = b.intern("abcdef")
            m.memoryStart = 0x1000
            m.memoryLimit = 0x9000
            m.hasFunctions = true
        }
        let main = builder.location(mappingID: mapping, address: 0x1100, lines: [.init(functionID: builder.function(name: "main"))])
        let a = builder.location(mappingID: mapping, address: 0x1200, lines: [.init(functionID: builder.function(name: "a", file: "a.c"), line: 12)])
        let b = builder.location(mappingID: mapping, address: 0x1300, lines: [
            .init(functionID: builder.function(name: "b_inlined"), line: 3),
            .init(functionID: builder.function(name: "b"), line: 7),
        ])
        let c = builder.location(mappingID: mapping, address: 0x1400, lines: [.init(functionID: builder.function(name: "c;odd name"))])
        let labels = [builder.label("thread_name", "worker"), builder.label("pid", "42")]
        builder.addSample(locationIDs: [b, a, main], values: [3, 30_303_030], labels: labels)
        builder.addSample(locationIDs: [c, main], values: [1, 10_101_010], labels: labels)
        return builder.profile
    }

    @Test func roundTripsThroughGzip() throws {
        let profile = Self.sampleProfile()
        let bytes = profile.gzippedPprof()
        #expect(Gzip.isGzip(bytes))
        let decoded = try Profile(pprofFile: bytes)
        #expect(decoded == profile)
        #expect(decoded.string(decoded.sampleTypes[1].type) == "cpu")
        #expect(decoded.string(decoded.sampleTypes[1].unit) == "nanoseconds")
        #expect(decoded.string(decoded.periodType!.type) == "cpu")
    }

    @Test func foldedStacksAreRootFirstWithInlineFramesExpanded() {
        let folded = Self.sampleProfile().folded()
        #expect(folded == "main;a;b;b_inlined 3\nmain;c:odd name 1\n")
    }

    @Test func functionTotalsCountSelfAndTotal() {
        let totals = FunctionTotals(Self.sampleProfile())
        #expect(totals.grandTotal == 4)
        let byName = Dictionary(uniqueKeysWithValues: totals.entries.map { ($0.function, $0) })
        #expect(byName["main"]?.selfValue == 0)
        #expect(byName["main"]?.totalValue == 4)
        #expect(byName["b_inlined"]?.selfValue == 3)
        #expect(byName["a"]?.totalValue == 3)
        #expect(totals.topBySelf(1).first?.function == "b_inlined")
    }

    @Test func rejectsANonEmptyFirstString() {
        var profile = Self.sampleProfile()
        profile.stringTable[0] = "x"
        #expect(throws: ProfileDecodingError.self) { try Profile(pprofBytes: profile.pprofBytes()) }
    }

    @Test func rejectsOutOfRangeReferences() {
        var profile = Self.sampleProfile()
        profile.samples[0].locationIDs.append(999)
        #expect(throws: ProfileDecodingError.self) { try Profile(pprofBytes: profile.pprofBytes()) }
        profile = Self.sampleProfile()
        profile.functions[0].name = 10_000
        #expect(throws: ProfileDecodingError.self) { try Profile(pprofBytes: profile.pprofBytes()) }
        profile = Self.sampleProfile()
        profile.samples[0].values.append(1)
        #expect(throws: ProfileDecodingError.self) { try Profile(pprofBytes: profile.pprofBytes()) }
    }

    @Test func rejectsTruncatedAndRandomBytesWithoutCrashing() throws {
        let bytes = Self.sampleProfile().pprofBytes()
        for cut in stride(from: 1, to: bytes.count, by: 7) {
            // Every prefix either decodes to a valid profile or throws; never traps.
            _ = try? Profile(pprofBytes: Array(bytes[..<cut]))
        }
        var generator = SystemRandomNumberGenerator()
        var rejected = 0
        for _ in 0..<2000 {
            let random = (0..<Int.random(in: 1...200, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if (try? Profile(pprofBytes: random)) == nil { rejected += 1 }
        }
        #expect(rejected > 1900)
    }

    @Test func gzipRefusesToExpandPastItsLimit() throws {
        let bomb = Gzip.compress([UInt8](repeating: 0, count: 4 << 20))
        #expect(bomb.count < 16 * 1024)
        #expect(throws: Gzip.Error.self) { try Gzip.decompress(bomb, maxOutput: 1 << 20) }
        #expect(try Gzip.decompress(bomb, maxOutput: 8 << 20).count == 4 << 20)
        var corrupt = bomb
        corrupt[corrupt.count / 2] ^= 0xff
        #expect(throws: Gzip.Error.self) { try Gzip.decompress(corrupt) }
        #expect(throws: Gzip.Error.self) { try Gzip.decompress(Array(bomb.prefix(bomb.count / 2))) }
    }
}
