import BallastWire
import Foundation
import Testing

/// Python grpcio (an independent gRPC and TLS implementation) against Ballast over mutual TLS,
/// both directions.
@Suite("TLS interop with Python grpcio", .serialized)
struct TLSPythonInteropTests {
    static let clientScript = #"""
import sys, grpc
sys.path.insert(0, sys.argv[1])
from ballast.v1.testing import echo_pb2 as pb, echo_pb2_grpc as pbg
certs = sys.argv[3]
read = lambda name: open(f"{certs}/{name}", "rb").read()
options = [("grpc.ssl_target_name_override", "localhost")]
good = grpc.ssl_channel_credentials(read("ca.crt"), read("alice.key"), read("alice.crt"))
stub = pbg.EchoServiceStub(grpc.secure_channel("127.0.0.1:" + sys.argv[2], good, options))
r = stub.Echo(pb.EchoRequest(payload=b"\x00\x01\xff"), timeout=10)
assert r.text == "alice" and r.payload == b"\x00\x01\xff", r
print("mtls ok")
big = b"x" * (3 << 20)
assert stub.Echo(pb.EchoRequest(payload=big), timeout=10).payload == big
print("large ok")
anonymous = grpc.ssl_channel_credentials(read("ca.crt"))
try:
    pbg.EchoServiceStub(grpc.secure_channel("127.0.0.1:" + sys.argv[2], anonymous, options)).Echo(pb.EchoRequest(), timeout=5)
    raise SystemExit("a client without a certificate was served")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.UNAVAILABLE, e.code()
print("no certificate refused")
stranger = grpc.ssl_channel_credentials(read("ca.crt"), read("stranger.key"), read("stranger.crt"))
try:
    pbg.EchoServiceStub(grpc.secure_channel("127.0.0.1:" + sys.argv[2], stranger, options)).Echo(pb.EchoRequest(), timeout=5)
    raise SystemExit("a certificate from another CA was served")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.UNAVAILABLE, e.code()
print("other CA refused")
assert stub.Echo(pb.EchoRequest(), timeout=10).text == "alice"
print("ALL OK")
"""#

    static let serverScript = #"""
import sys, grpc
from concurrent import futures
sys.path.insert(0, sys.argv[1])
from ballast.v1.testing import echo_pb2 as pb, echo_pb2_grpc as pbg
certs = sys.argv[2]
read = lambda name: open(f"{certs}/{name}", "rb").read()
class Echo(pbg.EchoServiceServicer):
    def Echo(self, request, context):
        names = context.auth_context().get("x509_common_name", [b"?"])
        return pb.EchoResponse(text=names[0].decode(), payload=request.payload)
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
pbg.add_EchoServiceServicer_to_server(Echo(), server)
credentials = grpc.ssl_server_credentials([(read("server.key"), read("server.crt"))], root_certificates=read("ca.crt"),
                                          require_client_auth=True)
port = server.add_secure_port("127.0.0.1:0", credentials)
server.start()
print("READY", port, flush=True)
server.wait_for_termination()
"""#

    @Test("Python grpcio with TLS credentials calls a Ballast TLS server; no certificate and another CA are refused")
    func pythonClientOverTLS() async throws {
        let protoDir = try await PythonInteropTests.compileProtos()
        defer { try? FileManager.default.removeItem(at: protoDir) }
        let script = protoDir.appendingPathComponent("tls_client.py")
        try Self.clientScript.write(to: script, atomically: true, encoding: .utf8)
        let certs = try await TLSTestCertificates.directory.value
        let log = CapturedLog()
        try await TLSHandshakeTests.withServer(try await TLSTestCertificates.server(), log: log) { port, _ in
            let (status, stdout, stderr) = try await ChildProcess.run(
                TestPaths.python, [script.path, protoDir.path, "\(port)", certs.path], timeout: .seconds(60))
            let output = String(decoding: stdout, as: UTF8.self)
            #expect(status == 0, "python TLS client failed: \(output) \(stderr)")
            #expect(output.contains("ALL OK"))
            #expect(log.contains("refused a TLS connection"))
        }
    }

    @Test("the Ballast client with TLS options calls a Python grpcio server that requires client certificates")
    func ballastClientOverTLS() async throws {
        let protoDir = try await PythonInteropTests.compileProtos()
        defer { try? FileManager.default.removeItem(at: protoDir) }
        let script = protoDir.appendingPathComponent("tls_server.py")
        try Self.serverScript.write(to: script, atomically: true, encoding: .utf8)
        let certs = try await TLSTestCertificates.directory.value
        let server = try ChildProcess(TestPaths.python, [script.path, protoDir.path, certs.path])
        defer { server.stop() }
        let ready = try await server.waitForLine { $0.hasPrefix("READY ") }
        let port = try #require(Int(ready.dropFirst("READY ".count)))

        let client = try await TLSHandshakeTests.connect(port, try await TLSTestCertificates.client("alice"))
        var request = EchoRequest()
        request.payload = Data([0, 1, 2])
        let reply = try await client.unary(EchoService.echo, request: request, responseType: EchoResponse.self, timeout: .seconds(10))
        #expect(reply.text == "alice" && reply.payload == Data([0, 1, 2]))
        await client.close()

        // The Python server refuses a client certificate from another CA.
        let error = await TLSHandshakeTests.failure(port, try await TLSTestCertificates.client("stranger"))
        #expect(error != nil)
    }
}
