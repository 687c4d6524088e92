/// Who a node is and where its ports are, as it advertises them in the hello frame that opens
/// each of its Raft connections. Lets any member describe the whole cluster.
public struct NodeInfo: Sendable, Hashable {
    /// The member id.
    public var id: UInt64
    /// The Raft address as configured on that node.
    public var raft: String
    /// The client/worker API address.
    public var api: String
    /// The admin HTTP address.
    public var admin: String

    /// Creates node info.
    public init(id: UInt64, raft: String, api: String, admin: String) {
        self.id = id
        self.raft = raft
        self.api = api
        self.admin = admin
    }

    /// `id u64 | raft | api | admin`, each address a u32-length-prefixed UTF-8 string.
    public var encoded: [UInt8] {
        var writer = ByteWriter()
        writer.write(id)
        for address in [raft, api, admin] { writer.writeBlob(Array(address.utf8)) }
        return writer.bytes
    }

    /// Decodes `encoded`, refusing id 0, addresses over 255 bytes and trailing bytes.
    public init(encoded bytes: [UInt8]) throws(RaftWireError) {
        var reader = ByteReader(bytes)
        id = try reader.readUInt64()
        guard id != 0 else { throw .invalidValue(field: "hello node id 0", offset: 0) }
        var addresses: [String] = []
        for field in ["raft", "api", "admin"] {
            let raw = try reader.readBlob(field: "hello \(field) address", limit: 255)
            guard let text = String(validating: raw, as: UTF8.self) else { throw .invalidValue(field: "hello \(field) address", offset: reader.offset) }
            addresses.append(text)
        }
        try reader.expectEnd()
        (raft, api, admin) = (addresses[0], addresses[1], addresses[2])
    }
}
