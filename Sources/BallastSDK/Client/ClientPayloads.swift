import BallastProto
import Foundation

// The client encodes values with the SDK's `DataConverter` (JSON, then the codec chain), so
// a codec configured on the client (encryption) applies to inputs, signals and results as it
// does in the worker. The helpers below build raw JSON payloads for tools like the CLI.

/// Raw JSON payloads (`encoding: json/plain`) for tools that have JSON text, not Swift values.
public enum JSONClientPayloadConverter {
    /// The metadata key naming the encoding.
    public static let encodingKey = DataConverter.encodingKey
    /// The encoding name of JSON payloads.
    public static let jsonEncoding = DataConverter.jsonEncoding

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

extension DataConverter {
    /// Encodes one value, as the client's typed error.
    func clientPayload<Value: Encodable>(_ value: Value) throws(BallastClientError) -> Ballast_V1_Payload {
        do { return try toPayload(value) } catch { throw .payloadEncoding("\(error)") }
    }

    /// Decodes one payload, as the client's typed error.
    func clientValue<Value: Decodable>(_ payload: Ballast_V1_Payload, as type: Value.Type) throws(BallastClientError) -> Value {
        do { return try fromPayload(payload, as: Value.self) } catch { throw .payloadDecoding("\(error)") }
    }
}

/// Something that turns single values into payloads and back with the client's typed errors;
/// `DataConverter` is one (see `DataConverter+Client.swift`).
public protocol ClientPayloadConverting: Sendable {
    /// Encodes one value.
    func encode<Value: Encodable>(_ value: Value) throws(BallastClientError) -> Ballast_V1_Payload
    /// Decodes one value.
    func decode<Value: Decodable>(_ payload: Ballast_V1_Payload, as type: Value.Type) throws(BallastClientError) -> Value
}
