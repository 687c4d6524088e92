import BallastProto
import Foundation

// A small JSON payload converter for the client. The SDK's own converter and codec chain
// (Sources/BallastSDK/Payload, written in parallel) replaces it once it lands; the client
// only needs `ClientPayloadConverting`, so swapping is one line in `BallastClient.init`.

/// Turns values into payloads and back, on the client side.
public protocol ClientPayloadConverting: Sendable {
    /// Encodes one value.
    func encode<Value: Encodable>(_ value: Value) throws(BallastClientError) -> Ballast_V1_Payload
    /// Decodes one value.
    func decode<Value: Decodable>(_ payload: Ballast_V1_Payload, as type: Value.Type) throws(BallastClientError) -> Value
}

/// JSON (`encoding: json/plain`), as Temporal's default data converter.
public struct JSONClientPayloadConverter: ClientPayloadConverting {
    /// The metadata key naming the encoding.
    public static let encodingKey = "encoding"
    /// The encoding name of JSON payloads.
    public static let jsonEncoding = "json/plain"

    /// Creates the converter.
    public init() {}

    /// Encodes `value` as JSON (keys sorted, so equal values give equal bytes).
    public func encode<Value: Encodable>(_ value: Value) throws(BallastClientError) -> Ballast_V1_Payload {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return Self.payload(jsonData: try encoder.encode(value))
        } catch {
            throw .payloadEncoding("\(Value.self) as JSON: \(error)")
        }
    }

    /// Decodes a JSON payload; refuses other encodings with a clear error.
    public func decode<Value: Decodable>(_ payload: Ballast_V1_Payload, as type: Value.Type) throws(BallastClientError) -> Value {
        if let encoding = payload.metadata[Self.encodingKey], String(decoding: encoding, as: UTF8.self) != Self.jsonEncoding {
            throw .payloadDecoding("payload encoding is '\(String(decoding: encoding, as: UTF8.self))', expected \(Self.jsonEncoding)")
        }
        do {
            return try JSONDecoder().decode(Value.self, from: payload.data)
        } catch {
            throw .payloadDecoding("\(Value.self) from JSON: \(error)")
        }
    }

    /// A JSON payload holding `jsonData` as is.
    public static func payload(jsonData: Data) -> Ballast_V1_Payload {
        var payload = Ballast_V1_Payload()
        payload.metadata[encodingKey] = Data(jsonEncoding.utf8)
        payload.data = jsonData
        return payload
    }

    /// A JSON payload from JSON text typed by a person (the CLI's `--input`), validated first.
    public static func payload(jsonText: String) throws(BallastClientError) -> Ballast_V1_Payload {
        let data = Data(jsonText.utf8)
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw .invalidArgument("input is not valid JSON: \(jsonText.prefix(80))")
        }
        return payload(jsonData: data)
    }
}

/// No value: encodes as JSON `null` and decodes from anything (workflows without output).
public struct NoValue: Codable, Sendable, Equatable {
    /// The only value.
    public init() {}
    /// Ignores whatever was there.
    public init(from decoder: any Decoder) throws {}
    /// Writes `null`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encodeNil()
    }
}
