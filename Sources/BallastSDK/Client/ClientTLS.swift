import BallastWire

/// Mutual TLS settings of a client or worker (`BallastClientOptions.tls`): the cluster's CA
/// bundle, and this client's certificate and key (its identity, docs/security.md).
public typealias ClientTLSOptions = TLSClientOptions
