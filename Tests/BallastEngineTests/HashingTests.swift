import BallastEngine
import BallastProto
import Foundation
import Testing

@Suite("Hashing")
struct HashingTests {
    @Test("SHA-256 matches the FIPS 180-4 test vectors, however the input is split")
    func sha256Vectors() {
        let vectors: [(String, String)] = [
            ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        ]
        for (input, expected) in vectors {
            #expect(hexString(SHA256Hasher.hash(Array(input.utf8))) == expected)
            for split in 0...input.utf8.count {
                var hasher = SHA256Hasher()
                hasher.update(Array(input.utf8.prefix(split)))
                hasher.update(Array(input.utf8.dropFirst(split)))
                #expect(hexString(hasher.finalize()) == expected, "split at \(split)")
            }
        }
        let million = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(hexString(SHA256Hasher.hash(million)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("the rolling history hash changes with event content and repeats for the same history")
    func historyHashSensitivity() {
        var first = Harness(), second = Harness()
        let a = first.start("w") { $0.input = payloads("x") }
        let b = second.start("w") { $0.input = payloads("y") }
        let hashA = try? first.engine.describe(namespace: "default", execution: a.execution).info.historyHash
        let hashB = try? second.engine.describe(namespace: "default", execution: b.execution).info.historyHash
        #expect(hashA != nil && hashA != hashB, "a different input gives a different history hash")
        var third = Harness()
        let c = third.start("w") { $0.input = payloads("x") }
        let hashC = try? third.engine.describe(namespace: "default", execution: c.execution).info.historyHash
        #expect(hashA == hashC, "the same history gives the same hash")
    }
}
