import CNghttp2

/// Builds nghttp2 name/value arrays from header fields for the duration of one call.
enum NGHTTP2HeaderBlock {
    /// Calls `body` with an `nghttp2_nv` array pointing into one contiguous byte buffer.
    ///
    /// nghttp2's submit functions copy the names and values, so the pointers need only
    /// live for the call.
    static func with<Result>(
        _ headers: [HTTP2Header], _ body: (UnsafePointer<nghttp2_nv>?, Int) -> Result
    ) -> Result {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count })
        var spans: [(name: Int, nameLength: Int, value: Int, valueLength: Int)] = []
        spans.reserveCapacity(headers.count)
        for header in headers {
            let nameStart = bytes.count
            bytes.append(contentsOf: header.name.utf8)
            let valueStart = bytes.count
            bytes.append(contentsOf: header.value.utf8)
            spans.append((nameStart, valueStart - nameStart, valueStart, bytes.count - valueStart))
        }
        return bytes.withUnsafeMutableBufferPointer { raw -> Result in
            guard let base = raw.baseAddress else { return body(nil, 0) }
            var nva: [nghttp2_nv] = []
            nva.reserveCapacity(spans.count)
            for span in spans {
                nva.append(nghttp2_nv(
                    name: base + span.name, value: base + span.value,
                    namelen: span.nameLength, valuelen: span.valueLength,
                    flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
            }
            return nva.withUnsafeBufferPointer { body($0.baseAddress, $0.count) }
        }
    }
}
