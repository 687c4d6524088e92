// Hash functions implemented here because the engine core uses no Foundation and no crypto library:
// SHA-256 for state digests, FNV-1a 64 for rolling history hashes and run ids.

/// SHA-256 (FIPS 180-4) over byte sequences.
public struct SHA256Hasher: Sendable {
    private static let roundConstants: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]
    private var state: [UInt32] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ]
    private var buffer: [UInt8] = []
    private var totalBytes: UInt64 = 0

    /// Creates a hasher with the standard initial state.
    public init() { buffer.reserveCapacity(64) }

    /// Feeds bytes into the hash.
    public mutating func update<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        let handled: Void? = bytes.withContiguousStorageIfAvailable { self.updateContiguous($0) }
        if handled != nil { return }
        updateContiguous(Array(bytes))
    }

    private mutating func updateContiguous(_ input: UnsafeBufferPointer<UInt8>) {
        totalBytes &+= UInt64(input.count)
        var offset = 0
        if !buffer.isEmpty {
            let take = min(64 - buffer.count, input.count)
            buffer.append(contentsOf: input[0..<take])
            offset = take
            guard buffer.count == 64 else { return }
            let block = buffer
            block.withUnsafeBufferPointer { compress($0, at: 0) }
            buffer.removeAll(keepingCapacity: true)
        }
        while input.count - offset >= 64 {
            compress(input, at: offset)
            offset += 64
        }
        buffer.append(contentsOf: input[offset...])
    }

    private mutating func updateContiguous(_ input: [UInt8]) {
        input.withUnsafeBufferPointer { updateContiguous($0) }
    }

    /// Feeds an integer as 8 big-endian bytes.
    public mutating func update(uint64 value: UInt64) {
        update((0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) })
    }

    /// Feeds a string as its length followed by its UTF-8 bytes (unambiguous concatenation).
    public mutating func update(string: String) {
        update(uint64: UInt64(string.utf8.count))
        update(string.utf8)
    }

    /// Finishes the hash and returns the 32-byte digest.
    public mutating func finalize() -> [UInt8] {
        let bitLength = totalBytes &* 8
        var padding: [UInt8] = [0x80]
        let afterOne = (buffer.count + 1) % 64
        padding += [UInt8](repeating: 0, count: afterOne <= 56 ? 56 - afterOne : 120 - afterOne)
        for shift in stride(from: 56, through: 0, by: -8) { padding.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift))) }
        updateContiguous(padding)
        precondition(buffer.isEmpty, "SHA-256 padding must end on a block boundary")
        var digest: [UInt8] = []
        digest.reserveCapacity(32)
        for word in state {
            for shift in stride(from: 24, through: 0, by: -8) { digest.append(UInt8(truncatingIfNeeded: word >> UInt32(shift))) }
        }
        return digest
    }

    /// Hashes a byte sequence in one call.
    public static func hash<Bytes: Sequence>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        var hasher = SHA256Hasher()
        hasher.update(bytes)
        return hasher.finalize()
    }

    private mutating func compress(_ input: UnsafeBufferPointer<UInt8>, at base: Int) {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { words in
            for index in 0..<16 {
                let at = base + index * 4
                words[index] = UInt32(input[at]) << 24 | UInt32(input[at + 1]) << 16
                    | UInt32(input[at + 2]) << 8 | UInt32(input[at + 3])
            }
            for index in 16..<64 {
                let s0 = rotr(words[index - 15], 7) ^ rotr(words[index - 15], 18) ^ (words[index - 15] >> 3)
                let s1 = rotr(words[index - 2], 17) ^ rotr(words[index - 2], 19) ^ (words[index - 2] >> 10)
                words[index] = words[index - 16] &+ s0 &+ words[index - 7] &+ s1
            }
            var (a, b, c, d, e, f, g, h) = (state[0], state[1], state[2], state[3], state[4], state[5], state[6], state[7])
            for index in 0..<64 {
                let sum1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
                let choice = (e & f) ^ (~e & g)
                let temp1 = h &+ sum1 &+ choice &+ Self.roundConstants[index] &+ words[index]
                let sum0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
                let majority = (a & b) ^ (a & c) ^ (b & c)
                (h, g, f, e, d, c, b, a) = (g, f, e, d &+ temp1, c, b, a, temp1 &+ sum0 &+ majority)
            }
            state[0] &+= a; state[1] &+= b; state[2] &+= c; state[3] &+= d
            state[4] &+= e; state[5] &+= f; state[6] &+= g; state[7] &+= h
        }
    }

    private func rotr(_ value: UInt32, _ count: UInt32) -> UInt32 {
        (value >> count) | (value << (32 - count))
    }
}

/// FNV-1a 64-bit, used to chain a run's history events into one rolling hash.
public enum RollingHash {
    /// The hash of an empty history.
    public static let empty: UInt64 = 0xcbf2_9ce4_8422_2325
    private static let prime: UInt64 = 0x0000_0100_0000_01b3

    /// FNV-1a of `previous`'s 8 bytes, big-endian, starting from `previous`: the first step of
    /// `combine`, unrolled (the `stride` loop cost about 100 instructions, once per history event).
    static func chainPrevious(_ previous: UInt64) -> UInt64 {
        var hash = (previous ^ (previous >> 56)) &* prime
        hash = (hash ^ (previous >> 48 & 0xff)) &* prime
        hash = (hash ^ (previous >> 40 & 0xff)) &* prime
        hash = (hash ^ (previous >> 32 & 0xff)) &* prime
        hash = (hash ^ (previous >> 24 & 0xff)) &* prime
        hash = (hash ^ (previous >> 16 & 0xff)) &* prime
        hash = (hash ^ (previous >> 8 & 0xff)) &* prime
        return (hash ^ (previous & 0xff)) &* prime
    }

    /// Chains `bytes` onto `previous`: hash(previous ‖ bytes).
    public static func combine<Bytes: Sequence>(_ previous: UInt64, _ bytes: Bytes) -> UInt64
    where Bytes.Element == UInt8 {
        var hash = chainPrevious(previous)
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* prime
        }
        return hash
    }
}

/// Lower-case hexadecimal rendering of bytes.
public func hexString(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}
