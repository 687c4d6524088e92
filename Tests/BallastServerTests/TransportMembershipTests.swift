import BallastRaft
@testable import BallastServer
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

@Suite("Member addresses: the address book, its file, config-entry contexts and a transport whose peers change")
struct TransportMembershipTests {
    private func info(_ id: UInt64, port: Int = 0, api: String = "") -> NodeInfo {
        NodeInfo(id: id, raft: "127.0.0.1:\(port == 0 ? 7000 + Int(id) : port)", api: api.isEmpty ? "127.0.0.1:\(8000 + id)" : api,
                 admin: "127.0.0.1:\(9000 + id)")
    }

    @Test("a committed addLearner wins; a removal sticks against hellos and peer tables until the id is re-added")
    func bookRules() {
        var book = AddressBook(initialVoters: [3, 1, 2])
        #expect(book.initialVoters == [1, 2, 3])
        let changed1 = book.learn(NodeInfo(id: 2, raft: "10.0.0.2:7002", api: "", admin: ""), from: .commandLine)
        #expect(changed1)
        // A hello from 2 fills in its API and admin addresses but keeps the dialled Raft address.
        let changed2 = book.learn(NodeInfo(id: 2, raft: "0.0.0.0:7002", api: "10.0.0.2:8002", admin: "10.0.0.2:9002"), from: .hello)
        #expect(changed2)
        #expect(book.members[2] == NodeInfo(id: 2, raft: "10.0.0.2:7002", api: "10.0.0.2:8002", admin: "10.0.0.2:9002"))
        // A peer's table never overrides what this node knows, only fills gaps.
        let changed3 = book.learn(NodeInfo(id: 2, raft: "10.9.9.9:1", api: "", admin: ""), from: .peerTable)
        #expect(!changed3)
        let changed4 = book.learn(info(4), from: .peerTable)
        #expect(changed4)
        // The log is authoritative.
        let changed5 = book.learn(info(2, port: 7102), from: .configEntry)
        #expect(changed5)
        #expect(book.dialAddress(for: 2) == "127.0.0.1:7102")

        let changed6 = book.remove(4)
        #expect(changed6)
        #expect(book.dialAddress(for: 4) == nil)
        let changed7 = book.learn(info(4), from: .hello)
        #expect(!changed7, "a removed member's hello does not bring it back")
        let changed8 = book.learn(info(4), from: .peerTable)
        #expect(!changed8)
        let changed9 = book.learn(info(4), from: .commandLine)
        #expect(!changed9)
        let changed10 = book.learn(info(4, port: 7204), from: .configEntry)
        #expect(changed10, "re-adding through the log lifts the removal")
        #expect(book.dialAddress(for: 4) == "127.0.0.1:7204")

        // After a snapshot install only the snapshot's members (and this node) stay.
        let changed11 = book.learn(info(5), from: .hello)
        #expect(changed11)
        let changed12 = book.restrict(to: [2, 4], localID: 9)
        #expect(changed12)
        #expect(Set(book.members.keys) == [2, 4])
        let changed13 = book.restrict(to: [], localID: 9)
        #expect(!changed13, "an empty membership (a joining node) restricts nothing")
    }

    @Test("the members file round-trips, is replaced atomically, and refuses a damaged copy")
    func memberFile() throws {
        let directory = NSTemporaryDirectory() + "ballast-members-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = MemberTableFile(dataDirectory: directory)
        #expect(try file.load() == nil)
        var book = AddressBook(initialVoters: [1, 2, 3], members: [1: info(1), 4: info(4)])
        book.remove(2)
        try file.save(book)
        #expect(try file.load() == book)
        book.learn(info(5), from: .configEntry)
        try file.save(book)
        #expect(try file.load() == book)
        #expect(!FileManager.default.fileExists(atPath: file.path + ".tmp"))

        var bytes = try #require(FileManager.default.contents(atPath: file.path))
        bytes[bytes.count - 3] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: file.path))
        #expect(throws: MemberTableFileError.self) { _ = try file.load() }
        try Data("not a table".utf8).write(to: URL(fileURLWithPath: file.path))
        #expect(throws: MemberTableFileError.self) { _ = try file.load() }
    }

    @Test("member lists refuse trailing bytes, truncation and more than the member limit")
    func memberListCodec() throws {
        let list = [info(1), info(2), info(3)]
        let encoded = MemberTableCodec.encodeList(list)
        #expect(try MemberTableCodec.decodeList(encoded) == list)
        #expect(throws: RaftWireError.self) { _ = try MemberTableCodec.decodeList(encoded + [0]) }
        for cut in [1, 5, encoded.count - 1] {
            #expect(throws: RaftWireError.self) { _ = try MemberTableCodec.decodeList(Array(encoded.prefix(cut))) }
        }
        #expect(throws: RaftWireError.self) { _ = try MemberTableCodec.decodeList([0xFF, 0xFF, 0xFF, 0xFF]) }
    }

    @Test("a config-change entry carries the new member's addresses after the 9-byte change; 9-byte entries still decode")
    func configChangeContext() throws {
        let change = ConfigChange.addLearner(NodeID(4))
        let data = change.encoded + info(4).encoded
        #expect(ConfigChange(encoded: data) == change)
        #expect(try NodeInfo(encoded: Array(ConfigChange.context(of: data))) == info(4))
        #expect(ConfigChange(encoded: ConfigChange.remove(NodeID(2)).encoded) == .remove(NodeID(2)))
        #expect(ConfigChange.context(of: ConfigChange.remove(NodeID(2)).encoded).isEmpty)
        #expect(ConfigChange(encoded: Array(change.encoded.prefix(8))) == nil)
    }

    @Test("peers added at runtime are dialled, peers learn each other's tables, and a removed peer stops being dialled")
    func runtimePeers() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let logger = Logger(label: "test.raft.membership")
        let received = Mutex<[Message]>([])
        let persisted = Mutex<[AddressBook]>([])
        let receiver = TCPRaftTransport(localInfo: info(2), book: AddressBook(initialVoters: [1]), group: group, logger: logger) { book in
            persisted.withLock { $0.append(book) }
        }
        let port = try await receiver.listen(host: "127.0.0.1", port: 0) { message in received.withLock { $0.append(message) } }
        var senderBook = AddressBook(initialVoters: [1])
        senderBook.learn(info(3), from: .configEntry)  // a member the receiver was never told about
        let sender = TCPRaftTransport(localInfo: info(1), book: senderBook, group: group, logger: logger)
        let heartbeat = Message(from: NodeID(1), to: NodeID(2), term: Term(1), body: .heartbeat(commit: .zero, readContext: 0))

        sender.send([heartbeat])  // no address for 2 yet: dropped
        sender.learn(info(2, port: port), from: .configEntry)
        sender.send([heartbeat])
        try await waitUntil("the message reaches the peer added at runtime") { received.withLock { $0.count } == 1 }
        try await waitUntil("the receiver learns member 3 from the sender's table") { receiver.knownNodes[3] == info(3) }
        #expect(receiver.knownNodes[1] == info(1))
        #expect(persisted.withLock { $0.last?.members[3] } == info(3), "what the receiver learned was handed over for persisting")

        sender.removeMember(NodeID(2))
        sender.send([heartbeat])
        sender.learn(NodeInfo(id: 2, raft: "127.0.0.1:\(port)", api: "", admin: ""), from: .hello)
        sender.send([heartbeat])
        // A probe through another peer shows the sender's loop has moved past the sends above.
        let probe = TCPRaftTransport(localInfo: info(5), book: AddressBook(initialVoters: [1]), group: group, logger: logger)
        probe.learn(info(2, port: port), from: .configEntry)
        probe.send([Message(from: NodeID(5), to: NodeID(2), term: Term(1), body: .heartbeat(commit: .zero, readContext: 0))])
        try await waitUntil("the probe arrives") { received.withLock { $0.contains { $0.from == NodeID(5) } } }
        #expect(received.withLock { $0.filter { $0.from == NodeID(1) }.count } == 1, "nothing more reaches a removed peer")
        #expect(sender.knownNodes[2] == nil)

        await probe.shutdown()
        await sender.shutdown()
        await receiver.shutdown()
        try await group.shutdownGracefully()
    }

    @Test("a member table before the hello, or a malformed one, closes the connection and teaches the node nothing")
    func badMemberFrames() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let receiver = TCPRaftTransport(localInfo: info(2), book: AddressBook(initialVoters: [1]), group: group,
                                        logger: Logger(label: "test"))
        let port = try await receiver.listen(host: "127.0.0.1", port: 0) { _ in }
        let table = MemberTableCodec.encodeList([info(7)])
        for frames in [[(RaftFrame.Kind.members, table)], [(.hello, info(1).encoded), (.members, table + [0])],
                       [(.hello, info(1).encoded), (.members, [0, 0, 0, 1, 0, 0, 0, 3, 1, 2, 3])]] {
            var buffer = ByteBuffer()
            for (kind, payload) in frames { RaftFrameEncoder.write(payload: payload, kind: kind, to: &buffer) }
            let channel = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).get()
            try await channel.writeAndFlush(buffer).get()
            try await channel.closeFuture.get()
        }
        #expect(receiver.knownNodes[7] == nil)
        await receiver.shutdown()
        try await group.shutdownGracefully()
    }
}
