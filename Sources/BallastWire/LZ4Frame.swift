import CLZ4

/// Errors of the LZ4 frame codec, with where and why.
public enum LZ4Error: Error, Sendable, Equatable, CustomStringConvertible {
    /// liblz4 rejected the input (corrupted frame, bad checksum); `detail` is its error name.
    case corrupt(offset: Int, detail: String)
    /// The input ended before the frame did.
    case truncated(consumedBytes: Int)
    /// Decompressed output would exceed the caller's limit.
    case tooLarge(limitBytes: Int)
    /// Bytes follow the end of the frame.
    case trailingBytes(offset: Int)
    /// Compression failed (out of memory or an internal liblz4 error).
    case compressionFailed(detail: String)

    /// Describes the error.
    public var description: String {
        switch self {
        case let .corrupt(offset, detail): "corrupt LZ4 frame near byte \(offset): \(detail)"
        case let .truncated(consumed): "LZ4 frame truncated after \(consumed) bytes"
        case let .tooLarge(limit): "LZ4 frame decompresses to more than \(limit) bytes"
        case let .trailingBytes(offset): "unexpected bytes after the LZ4 frame at offset \(offset)"
        case let .compressionFailed(detail): "LZ4 compression failed: \(detail)"
        }
    }
}

/// The LZ4 frame format (lz4 CLI, Python `lz4.frame`), with content size and content checksum.
public enum LZ4Frame {
    /// Compresses `input` into one LZ4 frame.
    public static func compress(_ input: UnsafeRawBufferPointer) throws(LZ4Error) -> [UInt8] {
        var preferences = LZ4F_preferences_t()
        preferences.frameInfo.contentSize = UInt64(input.count)
        preferences.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled
        preferences.frameInfo.blockSizeID = LZ4F_max256KB
        let bound = LZ4F_compressFrameBound(input.count, &preferences)
        var failure: String?
        let output = [UInt8](unsafeUninitializedCapacity: bound) { destination, count in
            let written = LZ4F_compressFrame(destination.baseAddress, bound, input.baseAddress, input.count, &preferences)
            if LZ4F_isError(written) != 0 {
                failure = String(cString: LZ4F_getErrorName(written))
                count = 0
            } else {
                count = written
            }
        }
        if let failure { throw .compressionFailed(detail: failure) }
        return output
    }

    /// Compresses a byte array into one LZ4 frame.
    public static func compress(_ input: [UInt8]) throws(LZ4Error) -> [UInt8] {
        let result = input.withUnsafeBytes { bytes in Result { () throws(LZ4Error) in try compress(bytes) } }
        return try result.get()
    }

    /// Decompresses exactly one LZ4 frame, refusing output larger than `maxOutputBytes`.
    public static func decompress(_ input: UnsafeRawBufferPointer, maxOutputBytes: Int) throws(LZ4Error) -> [UInt8] {
        var context: OpaquePointer?
        guard LZ4F_isError(LZ4F_createDecompressionContext(&context, UInt32(LZ4F_VERSION))) == 0, let context else {
            throw .compressionFailed(detail: "cannot create a decompression context")
        }
        defer { LZ4F_freeDecompressionContext(context) }
        if let direct = try decompressKnownSize(context: context, input, maxOutputBytes: maxOutputBytes) {
            return direct
        }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        var offset = 0
        var finished = false
        while true {
            var destinationSize = chunk.count
            var sourceSize = input.count - offset
            let hint = chunk.withUnsafeMutableBytes { destination in
                LZ4F_decompress(context, destination.baseAddress, &destinationSize,
                                input.baseAddress.map { $0 + offset }, &sourceSize, nil)
            }
            if LZ4F_isError(hint) != 0 {
                throw .corrupt(offset: offset, detail: String(cString: LZ4F_getErrorName(hint)))
            }
            offset += sourceSize
            guard output.count + destinationSize <= maxOutputBytes else { throw .tooLarge(limitBytes: maxOutputBytes) }
            output.append(contentsOf: chunk[0..<destinationSize])
            if hint == 0 { finished = true; break }
            if sourceSize == 0 && destinationSize == 0 { break }
        }
        guard finished else { throw .truncated(consumedBytes: offset) }
        guard offset == input.count else { throw .trailingBytes(offset: offset) }
        return output
    }

    /// Fast path: when the header announces the content size, decompress straight into one
    /// array of that size (one allocation, no intermediate copy). Nil when the size is unknown.
    private static func decompressKnownSize(context: OpaquePointer, _ input: UnsafeRawBufferPointer,
                                            maxOutputBytes: Int) throws(LZ4Error) -> [UInt8]? {
        var info = LZ4F_frameInfo_t()
        var headerSize = input.count
        let hint = LZ4F_getFrameInfo(context, &info, input.baseAddress, &headerSize)
        if LZ4F_isError(hint) != 0 {
            throw .corrupt(offset: 0, detail: String(cString: LZ4F_getErrorName(hint)))
        }
        guard info.contentSize > 0 else {
            LZ4F_resetDecompressionContext(context)
            return nil
        }
        guard info.contentSize <= UInt64(maxOutputBytes) else { throw .tooLarge(limitBytes: maxOutputBytes) }
        let size = Int(info.contentSize)
        var offset = headerSize
        var failure: LZ4Error?
        let output = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            var produced = 0
            var finished = false
            while !finished {
                var destinationSize = size - produced
                var sourceSize = input.count - offset
                let next = LZ4F_decompress(context, buffer.baseAddress.map { $0 + produced }, &destinationSize,
                                           input.baseAddress.map { $0 + offset }, &sourceSize, nil)
                if LZ4F_isError(next) != 0 {
                    failure = .corrupt(offset: offset, detail: String(cString: LZ4F_getErrorName(next)))
                    break
                }
                offset += sourceSize
                produced += destinationSize
                finished = next == 0
                if !finished, sourceSize == 0, destinationSize == 0 {
                    failure = produced >= size ? .tooLarge(limitBytes: size) : .truncated(consumedBytes: offset)
                    break
                }
            }
            count = failure == nil ? produced : 0
        }
        if let failure { throw failure }
        guard output.count == size else { throw .corrupt(offset: offset, detail: "content size mismatch") }
        guard offset == input.count else { throw .trailingBytes(offset: offset) }
        return output
    }

    /// Decompresses one LZ4 frame held in a byte array.
    public static func decompress(_ input: [UInt8], maxOutputBytes: Int) throws(LZ4Error) -> [UInt8] {
        let result = input.withUnsafeBytes { bytes in
            Result { () throws(LZ4Error) in try decompress(bytes, maxOutputBytes: maxOutputBytes) }
        }
        return try result.get()
    }
}
