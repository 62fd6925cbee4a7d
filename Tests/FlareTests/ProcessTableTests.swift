import FlareProcesses
import Glibc
@testable import FlareSampler
import Testing

@Suite("process tracking")
struct ProcessTableTests {
    @Test func parsesExecutableMappingsFromProcMaps() throws {
        let line: Substring = "55d0c8e0c000-55d0c8e2e000 r-xp 00002000 fd:01 1835023                    /usr/bin/bash"
        let mapping = try #require(MappedFile(procMapsLine: line))
        #expect(mapping.start == 0x55d0c8e0c000)
        #expect(mapping.end == 0x55d0c8e2e000)
        #expect(mapping.fileOffset == 0x2000)
        #expect(mapping.inode == 1835023)
        #expect(mapping.path == "/usr/bin/bash")
        #expect(mapping.fileOffset(of: 0x55d0c8e0c010) == 0x2010)
        #expect(MappedFile(procMapsLine: "7ffd1000-7ffd2000 rw-p 00000000 00:00 0 [stack]") == nil)
        let deleted = try #require(MappedFile(procMapsLine: "1000-2000 r-xp 00000000 fd:01 12 /tmp/a.out (deleted)"))
        #expect(deleted.displayName == "a.out")
    }

    @Test func seedsItselfFromProcForALiveProcess() throws {
        let table = ProcessTable()
        let me = table.process(getpid())
        // This test binary's own code is mapped and executable.
        #expect(!me.mappings.isEmpty)
        #expect(me.mappings.contains { $0.path.hasSuffix("xctest") || $0.path.contains("FlarePackageTests") || $0.path.contains("flarePackageTests") })
        #expect(me.threadNames[getpid()] != nil)
    }

    @Test func newMappingsReplaceWhatTheyOverlap() {
        let table = ProcessTable()
        let state = table.process(999_999_999)
        state.add(MappedFile(start: 0x1000, end: 0x5000, fileOffset: 0, path: "/a"))
        state.add(MappedFile(start: 0x2000, end: 0x3000, fileOffset: 0, path: "/b"))
        #expect(state.mapping(containing: 0x1800)?.path == "/a")
        #expect(state.mapping(containing: 0x2800)?.path == "/b")
        let tail = state.mapping(containing: 0x4000)
        #expect(tail?.path == "/a")
        #expect(tail?.fileOffset == 0x2000)
        #expect(state.mapping(containing: 0x6000) == nil)
    }

    @Test func forkCopiesMappingsAndExecClearsThem() {
        let table = ProcessTable()
        let parent = table.process(999_999_990)
        parent.add(MappedFile(start: 0x1000, end: 0x2000, fileOffset: 0, path: "/parent"))
        table.apply(.fork(TaskRecord(pid: 999_999_991, parentPid: 999_999_990, tid: 999_999_991, parentTid: 999_999_990, time: 1)))
        #expect(table.process(999_999_991).mapping(containing: 0x1800)?.path == "/parent")
        table.apply(.comm(CommRecord(pid: 999_999_991, tid: 999_999_991, name: "child", isExec: true, time: 2)))
        #expect(table.process(999_999_991).mappings.isEmpty)
        #expect(table.process(999_999_991).name == "child")
    }

    @Test func aProcessAtItsLimitsHasTheRestCountedNotHeld() {
        let table = ProcessTable(limits: ProcessLimits(mappings: 100, threadNames: 10))
        let state = table.process(999_999_980)
        // Descending addresses, as mmap hands them out: each one goes in front.
        for i in (0..<150).reversed() {
            table.apply(.mmap(MmapRecord(pid: 999_999_980, tid: 999_999_980, start: UInt64(0x100000 + i * 0x2000), length: 0x1000,
                                         fileOffset: UInt64(i) * 0x1000, inode: 1, device: 1, protection: 5, buildID: nil,
                                         path: "/lib\(i)", time: UInt64(i))))
        }
        #expect(state.mappings.count == 100)
        #expect(table.droppedMappings == 50)
        #expect(state.mappings.map(\.start) == state.mappings.map(\.start).sorted())
        #expect(state.mapping(containing: 0x100000 + 149 * 0x2000 + 8)?.path == "/lib149")
        // A mapping that replaces one it overlaps exactly still fits.
        #expect(state.add(MappedFile(start: 0x100000 + 149 * 0x2000, end: 0x100000 + 149 * 0x2000 + 0x1000, fileOffset: 0, path: "/new")))
        #expect(state.mapping(containing: 0x100000 + 149 * 0x2000 + 8)?.path == "/new")
        for tid in 0..<20 { table.apply(.comm(CommRecord(pid: 999_999_980, tid: 999_999_000 + Int32(tid), name: "t\(tid)", isExec: false, time: 1))) }
        #expect(state.threadNames.count == 10)
        #expect(table.droppedThreadNames >= 10)
        #expect(state.threadName(999_999_019) == state.name)
        // Exited threads make room; an exec starts the process afresh.
        table.apply(.exit(TaskRecord(pid: 999_999_980, parentPid: 1, tid: 999_999_000, parentTid: 1, time: 2)))
        table.apply(.comm(CommRecord(pid: 999_999_980, tid: 999_999_019, name: "late", isExec: false, time: 3)))
        #expect(state.threadName(999_999_019) == "late")
        table.apply(.comm(CommRecord(pid: 999_999_980, tid: 999_999_980, name: "next", isExec: true, time: 4)))
        #expect(state.mappings.isEmpty && state.droppedMappings == 0)
    }
}
