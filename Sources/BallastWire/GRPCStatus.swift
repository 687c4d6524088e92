import BallastHTTP2

/// The gRPC status codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html).
public enum GRPCStatusCode: Int, Sendable, CaseIterable, CustomStringConvertible {
    case ok = 0, cancelled = 1, unknown = 2, invalidArgument = 3, deadlineExceeded = 4
    case notFound = 5, alreadyExists = 6, permissionDenied = 7, resourceExhausted = 8
    case failedPrecondition = 9, aborted = 10, outOfRange = 11, unimplemented = 12
    case `internal` = 13, unavailable = 14, dataLoss = 15, unauthenticated = 16

    /// The canonical upper-case name, as in other gRPC implementations.
    public var description: String {
        switch self {
        case .ok: "OK"
        case .cancelled: "CANCELLED"
        case .unknown: "UNKNOWN"
        case .invalidArgument: "INVALID_ARGUMENT"
        case .deadlineExceeded: "DEADLINE_EXCEEDED"
        case .notFound: "NOT_FOUND"
        case .alreadyExists: "ALREADY_EXISTS"
        case .permissionDenied: "PERMISSION_DENIED"
        case .resourceExhausted: "RESOURCE_EXHAUSTED"
        case .failedPrecondition: "FAILED_PRECONDITION"
        case .aborted: "ABORTED"
        case .outOfRange: "OUT_OF_RANGE"
        case .unimplemented: "UNIMPLEMENTED"
        case .internal: "INTERNAL"
        case .unavailable: "UNAVAILABLE"
        case .dataLoss: "DATA_LOSS"
        case .unauthenticated: "UNAUTHENTICATED"
        }
    }
}

/// A gRPC call outcome: a code, a message and trailing metadata; thrown as an error when not OK.
public struct GRPCStatus: Error, Sendable, Equatable, CustomStringConvertible {
    /// The status code.
    public var code: GRPCStatusCode
    /// A human-readable message (sent percent-encoded in `grpc-message`).
    public var message: String
    /// Extra trailers sent with the status (for example `ballast-leader`).
    public var trailers: GRPCMetadata

    /// Creates a status.
    public init(_ code: GRPCStatusCode, _ message: String = "", trailers: GRPCMetadata = GRPCMetadata()) {
        self.code = code
        self.message = message
        self.trailers = trailers
    }

    /// The OK status.
    public static let ok = GRPCStatus(.ok)

    /// UNAVAILABLE with the `ballast-leader` trailer that tells the caller where the leader is.
    public static func notLeader(leaderAddress: String?) -> GRPCStatus {
        var trailers = GRPCMetadata()
        if let leaderAddress { trailers.add(GRPCHeaderName.ballastLeader, leaderAddress) }
        return GRPCStatus(.unavailable, "this node is not the leader", trailers: trailers)
    }

    /// The `ballast-leader` trailer (HOST:PORT) if the status carries one.
    public var leaderAddress: String? { trailers.first(GRPCHeaderName.ballastLeader) }

    /// Describes the status as `CODE: message`.
    public var description: String { message.isEmpty ? "\(code)" : "\(code): \(message)" }
}

/// Header and trailer names used by gRPC and Ballast.
public enum GRPCHeaderName {
    /// The status code trailer.
    public static let status = "grpc-status"
    /// The percent-encoded status message trailer.
    public static let message = "grpc-message"
    /// The call deadline, as a relative timeout.
    public static let timeout = "grpc-timeout"
    /// The per-message compression in use on this stream.
    public static let encoding = "grpc-encoding"
    /// The per-message compressions the sender accepts.
    public static let acceptEncoding = "grpc-accept-encoding"
    /// `application/grpc` or `application/grpc+proto`.
    public static let contentType = "content-type"
    /// Trailer on UNAVAILABLE naming the leader's API address (HOST:PORT).
    public static let ballastLeader = "ballast-leader"
    /// Optional request header naming the namespace (default `default`).
    public static let ballastNamespace = "ballast-namespace"
    /// Optional request header naming the caller (worker identity, CLI user).
    public static let ballastIdentity = "ballast-identity"
    /// `stale` lets any node answer a read from its own applied state (possibly behind the leader).
    public static let ballastReadConsistency = "ballast-read-consistency"
}

/// Values of `content-type` and `grpc-encoding` that Ballast speaks.
public enum GRPCWireValue {
    /// The content type Ballast sends.
    public static let contentType = "application/grpc"
    /// The alternative content type Ballast accepts.
    public static let contentTypeProto = "application/grpc+proto"
    /// LZ4 frame per-message compression.
    public static let lz4 = "lz4"
    /// No compression.
    public static let identity = "identity"
    /// What Ballast announces in `grpc-accept-encoding`.
    public static let acceptedEncodings = "lz4,identity"

    /// Whether a comma-separated `grpc-accept-encoding` value names `encoding` (exactly, spaces
    /// and tabs around each name ignored). Plain UTF-8 comparison: this runs for every call.
    static func list(_ value: String, names encoding: String) -> Bool {
        let wanted = encoding.utf8
        return value.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false).contains { part in
            var name = part
            while let first = name.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { name = name.dropFirst() }
            while let last = name.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { name = name.dropLast() }
            return name.elementsEqual(wanted)
        }
    }
}

/// Custom metadata of a call: ordered header fields (lowercase names, repeated names allowed).
public struct GRPCMetadata: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    /// The fields in order.
    public var fields: [HTTP2Header]

    /// Creates metadata from fields.
    public init(_ fields: [HTTP2Header] = []) { self.fields = fields }

    /// Creates metadata from a literal.
    public init(dictionaryLiteral elements: (String, String)...) {
        fields = elements.map { HTTP2Header($0.0.lowercased(), $0.1) }
    }

    /// Appends a field (the name is lowercased).
    public mutating func add(_ name: String, _ value: String) {
        fields.append(HTTP2Header(name.lowercased(), value))
    }

    /// The first value of `name`, if any.
    public func first(_ name: String) -> String? {
        fields.first { $0.name == name }?.value
    }

    /// Whether the name is reserved by HTTP/2 or gRPC and so not user metadata.
    public static func isReserved(_ name: String) -> Bool {
        name.hasPrefix(":") || name.hasPrefix("grpc-") || name == "content-type" || name == "te"
            || name == "user-agent" || name == "content-length"
    }
}
