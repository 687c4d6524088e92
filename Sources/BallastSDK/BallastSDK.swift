/// The Swift SDK: the client, the worker, and the deterministic workflow runtime with replay.
public enum BallastSDK {
    /// The SDK's version, reported as part of a worker's identity.
    public static let version = "0.1.0"
}
