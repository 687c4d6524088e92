import BallastProto
import Foundation
import SwiftProtobuf

/// Transforms encoded payloads on their way to and from the cluster (encryption, compression).
///
/// Codecs run only in clients and workers, so with an encryption codec the cluster stores and
/// forwards ciphertext. They must be pure functions of their input: the workflow runtime decodes
/// the same history payloads again on every replay.
public protocol PayloadCodec: Sendable {
    /// Encodes payloads before they leave the process.
    func encode(_ payloads: [Ballast_V1_Payload]) throws -> [Ballast_V1_Payload]
    /// Decodes payloads that came from the cluster (the inverse of `encode`).
    func decode(_ payloads: [Ballast_V1_Payload]) throws -> [Ballast_V1_Payload]
}

/// A value could not be turned into a payload or back.
public struct PayloadConversionError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, naming the type and the encoding.
    public var message: String
    /// Creates an error with a message.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}

/// Converts Swift values to payloads and back: Codable as JSON (`encoding: json/plain`), then
/// the codec chain (first codec encodes first, decodes last).
public struct DataConverter: Sendable {
    /// The metadata key naming a payload's encoding.
    public static let encodingKey = "encoding"
    /// The encoding of JSON payloads.
    public static let jsonEncoding = "json/plain"
    /// The encoding of a payload that stands for "no value".
    public static let nullEncoding = "binary/null"

    /// The codecs applied after serialization, in encode order.
    public var codecs: [any PayloadCodec]

    /// The default converter: JSON, no codecs.
    public static let `default` = DataConverter()

    /// Creates a converter with a codec chain.
    public init(codecs: [any PayloadCodec] = []) { self.codecs = codecs }

    /// Encodes one value into one payload (serialization and codecs).
    public func toPayload<T: Encodable>(_ value: T) throws -> Ballast_V1_Payload {
        try toPayloads(value).payloads[0]
    }

    /// Encodes one value as a one-element `Payloads` (what inputs and results are on the wire).
    public func toPayloads<T: Encodable>(_ value: T) throws -> Ballast_V1_Payloads {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var payload = Ballast_V1_Payload()
        do {
            payload.data = try encoder.encode(value)
        } catch {
            throw PayloadConversionError("cannot encode \(T.self) as JSON: \(error)")
        }
        payload.metadata[Self.encodingKey] = Data(Self.jsonEncoding.utf8)
        var result = Ballast_V1_Payloads()
        result.payloads = try encodeWithCodecs([payload])
        return result
    }

    /// Decodes the first payload of `payloads` as `T`.
    public func fromPayloads<T: Decodable>(_ payloads: Ballast_V1_Payloads, as type: T.Type = T.self) throws -> T {
        guard let first = payloads.payloads.first else {
            throw PayloadConversionError("expected a payload of type \(T.self), got none")
        }
        return try fromPayload(first, as: type)
    }

    /// Decodes one payload (codecs, then deserialization) as `T`.
    public func fromPayload<T: Decodable>(_ payload: Ballast_V1_Payload, as type: T.Type = T.self) throws -> T {
        guard let decoded = try decodeWithCodecs([payload]).first else {
            throw PayloadConversionError("a payload codec returned no payload while decoding \(T.self)")
        }
        let encoding = decoded.metadata[Self.encodingKey].map { String(decoding: $0, as: UTF8.self) } ?? Self.jsonEncoding
        guard encoding == Self.jsonEncoding else {
            throw PayloadConversionError("cannot decode \(T.self) from a payload with encoding '\(encoding)' (expected \(Self.jsonEncoding))")
        }
        do {
            return try JSONDecoder().decode(T.self, from: decoded.data)
        } catch {
            throw PayloadConversionError("cannot decode \(T.self) from JSON payload: \(error)")
        }
    }

    /// Applies the codec chain in encode order.
    public func encodeWithCodecs(_ payloads: [Ballast_V1_Payload]) throws -> [Ballast_V1_Payload] {
        var current = payloads
        for codec in codecs { current = try codec.encode(current) }
        return current
    }

    /// Applies the codec chain in decode (reverse) order.
    public func decodeWithCodecs(_ payloads: [Ballast_V1_Payload]) throws -> [Ballast_V1_Payload] {
        var current = payloads
        for codec in codecs.reversed() { current = try codec.decode(current) }
        return current
    }
}
