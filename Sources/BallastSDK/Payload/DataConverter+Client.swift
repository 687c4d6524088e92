import BallastProto

// The client takes any `ClientPayloadConverting`; the data converter is one, so a client and a
// worker can share the same codec chain: `clientOptions.payloadConverter = dataConverter`.
extension DataConverter: ClientPayloadConverting {
    /// Encodes one value (JSON, then the codec chain).
    public func encode<Value: Encodable>(_ value: Value) throws(BallastClientError) -> Ballast_V1_Payload {
        do {
            return try toPayload(value)
        } catch {
            throw .payloadEncoding("\(error)")
        }
    }

    /// Decodes one value (the codec chain in reverse, then JSON).
    public func decode<Value: Decodable>(_ payload: Ballast_V1_Payload, as type: Value.Type) throws(BallastClientError) -> Value {
        do {
            return try fromPayload(payload, as: type)
        } catch {
            throw .payloadDecoding("\(error)")
        }
    }
}
