import CNghttp2

/// Builds nghttp2 name/value arrays from header fields for the duration of one call.
enum NGHTTP2HeaderBlock {
    /// Calls `body` with an `nghttp2_nv` array pointing into one contiguous byte buffer.
    ///
    /// nghttp2's submit functions copy the names and values, so the pointers need only live for
    /// the call; both buffers are temporary (stack) allocations, so a header block costs no malloc.
    static func with<Result>(
        _ headers: [HTTP2Header], _ body: (UnsafePointer<nghttp2_nv>?, Int) -> Result
    ) -> Result {
        var totalBytes = 0
        for header in headers { totalBytes += header.name.utf8.count + header.value.utf8.count }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(totalBytes, 1)) { bytes in
            withUnsafeTemporaryAllocation(of: nghttp2_nv.self, capacity: max(headers.count, 1)) { nva in
                guard let base = bytes.baseAddress, let first = nva.baseAddress else { return body(nil, 0) }
                var offset = 0
                for (index, header) in headers.enumerated() {
                    let nameStart = offset
                    offset = copy(header.name, to: bytes, at: offset)
                    let valueStart = offset
                    offset = copy(header.value, to: bytes, at: offset)
                    (first + index).initialize(to: nghttp2_nv(
                        name: base + nameStart, value: base + valueStart,
                        namelen: valueStart - nameStart, valuelen: offset - valueStart,
                        flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
                }
                precondition(offset == totalBytes, "header bytes changed while being copied")
                return body(first, headers.count)
            }
        }
    }

    private static func copy(_ string: String, to buffer: UnsafeMutableBufferPointer<UInt8>, at offset: Int) -> Int {
        let copied = string.utf8.withContiguousStorageIfAvailable { source -> Int in
            guard let from = source.baseAddress, let to = buffer.baseAddress else { return offset }
            (to + offset).update(from: from, count: source.count)
            return offset + source.count
        }
        if let copied { return copied }
        var end = offset
        for byte in string.utf8 {
            buffer[end] = byte
            end += 1
        }
        return end
    }
}
