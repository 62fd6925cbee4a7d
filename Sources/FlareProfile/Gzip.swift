import CZlib

/// gzip via zlib: pprof files are gzip-compressed protobuf.
public enum Gzip {
    public struct Error: Swift.Error, CustomStringConvertible {
        public let description: String
    }

    public static func compress(_ input: [UInt8], level: Int32 = 6) -> [UInt8] {
        var stream = z_stream()
        // windowBits 15 + 16 asks zlib for a gzip header and trailer.
        guard deflateInit2_(&stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                            ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            fatalError("zlib deflateInit2 failed: out of memory")
        }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))) + 32)
        let produced: Int = input.withUnsafeBufferPointer { inBuf in
            output.withUnsafeMutableBufferPointer { outBuf in
                stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
                stream.avail_in = UInt32(inBuf.count)
                stream.next_out = outBuf.baseAddress
                stream.avail_out = UInt32(outBuf.count)
                let status = deflate(&stream, Z_FINISH)
                precondition(status == Z_STREAM_END, "deflate with a bound-sized buffer must finish")
                return Int(stream.total_out)
            }
        }
        output.removeSubrange(produced...)
        return output
    }

    /// Decompresses gzip (or zlib) data, refusing to produce more than
    /// `maxOutput` bytes so a small hostile body cannot exhaust memory.
    public static func decompress(_ input: [UInt8], maxOutput: Int = 256 << 20) throws(Gzip.Error) -> [UInt8] {
        var stream = z_stream()
        // windowBits 15 + 32: detect gzip or zlib headers automatically.
        guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw Error(description: "zlib could not start (out of memory)")
        }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var status: Int32 = Z_OK
        try input.withUnsafeBufferPointer { (inBuf) throws(Gzip.Error) in
            stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
            stream.avail_in = UInt32(inBuf.count)
            repeat {
                let produced: Int = chunk.withUnsafeMutableBufferPointer { outBuf in
                    stream.next_out = outBuf.baseAddress
                    stream.avail_out = UInt32(outBuf.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    return outBuf.count - Int(stream.avail_out)
                }
                guard status == Z_OK || status == Z_STREAM_END || (status == Z_BUF_ERROR && produced > 0) else {
                    throw Error(description: status == Z_BUF_ERROR ? "gzip data is truncated" : "gzip data is corrupt")
                }
                guard output.count + produced <= maxOutput else {
                    throw Error(description: "gzip data expands past the limit of \(maxOutput) bytes")
                }
                output.append(contentsOf: chunk[..<produced])
                if status == Z_OK && produced == 0 && stream.avail_in == 0 {
                    throw Error(description: "gzip data is truncated")
                }
            } while status != Z_STREAM_END
        }
        return output
    }

    /// Whether the bytes start with the gzip magic number.
    public static func isGzip(_ bytes: [UInt8]) -> Bool { bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b }
}

extension Profile {
    /// The `.pb.gz` form.
    public func gzippedPprof() -> [UInt8] { Gzip.compress(pprofBytes()) }

    /// Reads a pprof file's bytes, gzip-compressed or not.
    public init(pprofFile bytes: [UInt8], maxDecompressed: Int = 256 << 20) throws {
        if Gzip.isGzip(bytes) {
            do {
                try self.init(pprofBytes: Gzip.decompress(bytes, maxOutput: maxDecompressed))
            } catch let error as Gzip.Error {
                throw ProfileDecodingError(error.description)
            }
        } else {
            try self.init(pprofBytes: bytes)
        }
    }
}
