import CPerfEvent
import Glibc

/// One mmap'd perf ring buffer: a metadata page, then 2^n data pages.
final class RingBuffer {
    private let base: UnsafeMutableRawPointer
    private let mappedSize: Int
    private let meta: UnsafeMutablePointer<perf_event_mmap_page>
    private let data: UnsafeMutableRawPointer
    private let dataSize: UInt64
    /// Scratch space for a record that wraps around the end of the ring.
    private var wrapped: [UInt8] = []

    init(fd: Int32, dataPages: Int) throws(SamplerError) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        mappedSize = page * (dataPages + 1)
        guard let address = mmap(nil, mappedSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), address != MAP_FAILED else {
            throw .ringBuffer(errno: errno, bytes: mappedSize)
        }
        base = address
        meta = address.assumingMemoryBound(to: perf_event_mmap_page.self)
        let offset = cperf_ring_data_offset(meta)
        data = address + Int(offset == 0 ? UInt64(page) : offset)
        let size = cperf_ring_data_size(meta)
        dataSize = size == 0 ? UInt64(page * dataPages) : size
    }

    deinit { munmap(base, mappedSize) }

    /// Calls `body` with each complete record and then releases the space.
    func drain(_ body: (UnsafeRawBufferPointer) -> Void) {
        let head = cperf_ring_head(meta)
        var tail = meta.pointee.data_tail
        while tail < head {
            let start = Int(tail % dataSize)
            let header = readBytes(at: start, count: 8)
            let size = Int(UInt16(littleEndian: header.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 6, as: UInt16.self) }))
            guard size >= 8, tail + UInt64(size) <= head else { break }
            if start + size <= Int(dataSize) {
                body(UnsafeRawBufferPointer(start: data + start, count: size))
            } else {
                wrapped = readBytes(at: start, count: size)
                wrapped.withUnsafeBytes { body($0) }
            }
            tail += UInt64(size)
        }
        cperf_ring_set_tail(meta, head)
    }

    private func readBytes(at start: Int, count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let firstPart = min(count, Int(dataSize) - start)
        out.withUnsafeMutableBytes { dst in
            dst.baseAddress!.copyMemory(from: data + start, byteCount: firstPart)
            if firstPart < count {
                (dst.baseAddress! + firstPart).copyMemory(from: data, byteCount: count - firstPart)
            }
        }
        return out
    }
}
