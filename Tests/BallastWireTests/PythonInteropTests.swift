import BallastWire
import Foundation
import Testing

/// Python grpcio (an independent gRPC implementation) against Ballast, both directions.
@Suite("Interop with Python grpcio", .serialized)
struct PythonInteropTests {
    /// Compiles the test proto (and every Ballast service proto) with grpcio-tools into a temp dir.
    static func compileProtos() async throws -> URL {
        let dir = try TestPaths.temporaryDirectory("ballast-pyproto")
        let protos = try FileManager.default.contentsOfDirectory(atPath: TestPaths.protoDir + "/ballast/v1")
            .filter { $0.hasSuffix(".proto") }.map { "ballast/v1/\($0)" } + ["ballast/v1/testing/echo.proto"]
        let (status, _, stderr) = try await ChildProcess.run(
            TestPaths.python,
            ["-m", "grpc_tools.protoc", "-I", TestPaths.protoDir, "--python_out=\(dir.path)",
             "--grpc_python_out=\(dir.path)"] + protos)
        #expect(status == 0, "grpc_tools.protoc failed: \(stderr)")
        return dir
    }

    static let clientScript = #"""
import sys, grpc
sys.path.insert(0, sys.argv[1])
from ballast.v1.testing import echo_pb2 as pb, echo_pb2_grpc as pbg
stub = pbg.EchoServiceStub(grpc.insecure_channel("127.0.0.1:" + sys.argv[2]))
r = stub.Echo(pb.EchoRequest(text="hello", payload=b"\x00\x01\xff"), metadata=[("x-trace", "abc")])
assert r.text == "hello" and r.payload == b"\x00\x01\xff", r
assert r.metadata["x-trace"] == "abc", r.metadata
print("unary ok")
rs = list(stub.Expand(pb.EchoRequest(text="s", count=50)))
assert [x.index for x in rs] == list(range(50)), [x.index for x in rs]
print("streaming ok")
try:
    stub.Fail(pb.EchoRequest(text="no such run \u00fc 100%", status_code=5, trailers={"ballast-leader": "10.0.0.7:7233"}))
    raise SystemExit("Fail did not fail")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.NOT_FOUND, e.code()
    assert e.details() == "no such run \u00fc 100%", e.details()
    assert dict(e.trailing_metadata())["ballast-leader"] == "10.0.0.7:7233", e.trailing_metadata()
print("error ok")
try:
    stub.Sleep(pb.EchoRequest(sleep_ms=10000), timeout=0.3)
    raise SystemExit("Sleep did not time out")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e.code()
print("deadline ok")
big = b"x" * (3 << 20)
assert stub.Echo(pb.EchoRequest(payload=big)).payload == big
print("large ok")
try:
    stub.Echo(pb.EchoRequest(payload=b"y" * (5 << 20)))
    raise SystemExit("oversized request accepted")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e.code()
print("oversized ok")
try:
    grpc.insecure_channel("127.0.0.1:" + sys.argv[2]).unary_unary("/ballast.v1.testing.EchoService/Nope")(b"")
    raise SystemExit("unknown method accepted")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.UNIMPLEMENTED, e.code()
print("unimplemented ok")
import lz4.frame
from ballast.v1 import cluster_service_pb2 as cs, cluster_service_pb2_grpc as csg
from ballast.v1 import workflow_service_pb2_grpc as wsg, engine_pb2, history_pb2
channel = grpc.insecure_channel("127.0.0.1:" + sys.argv[2])
cluster = csg.ClusterServiceStub(channel).DescribeCluster(cs.DescribeClusterRequest())
assert cluster.leader_id == "n1" and [m.role for m in cluster.members] == [cs.MEMBER_ROLE_LEADER, cs.MEMBER_ROLE_FOLLOWER, cs.MEMBER_ROLE_FOLLOWER], cluster
print("cluster ok")
page = wsg.WorkflowServiceStub(channel).GetWorkflowExecutionHistory(engine_pb2.GetWorkflowExecutionHistoryRequest(maximum_page_size=1500))
ids = []
for batch in page.batches:
    events = history_pb2.History.FromString(lz4.frame.decompress(batch.lz4_frame)).events
    assert len(events) == batch.event_count and events[0].event_id == batch.first_event_id
    ids += [e.event_id for e in events]
assert ids == list(range(1, 1501)) and len(page.batches) > 1, (len(ids), len(page.batches))
print("history ok")
print("ALL OK")
"""#

    @Test("Python grpcio calls a Ballast server: unary, streaming, error status, deadline, size limit")
    func pythonClientCallsBallastServer() async throws {
        let protoDir = try await Self.compileProtos()
        defer { try? FileManager.default.removeItem(at: protoDir) }
        let script = protoDir.appendingPathComponent("client.py")
        try Self.clientScript.write(to: script, atomically: true, encoding: .utf8)
        try await EchoService.withServer { _, port in
            let (status, stdout, stderr) = try await ChildProcess.run(
                TestPaths.python, [script.path, protoDir.path, "\(port)"], timeout: .seconds(60))
            let output = String(decoding: stdout, as: UTF8.self)
            #expect(status == 0, "python client failed: \(output) \(stderr)")
            #expect(output.contains("ALL OK"))
        }
    }

    static let serverScript = #"""
import sys, time, grpc
from concurrent import futures
sys.path.insert(0, sys.argv[1])
from ballast.v1.testing import echo_pb2 as pb, echo_pb2_grpc as pbg
class Echo(pbg.EchoServiceServicer):
    def Echo(self, request, context):
        md = {k: v for k, v in context.invocation_metadata() if k.startswith("x-")}
        return pb.EchoResponse(text=request.text, payload=request.payload, metadata=md)
    def Expand(self, request, context):
        for i in range(request.count):
            yield pb.EchoResponse(text=request.text, index=i)
    def Fail(self, request, context):
        context.set_trailing_metadata(tuple(request.trailers.items()))
        context.abort(grpc.StatusCode(next(c for c in grpc.StatusCode if c.value[0] == request.status_code)), request.text)
    def Sleep(self, request, context):
        time.sleep(request.sleep_ms / 1000.0)
        return pb.EchoResponse(text=request.text)
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
pbg.add_EchoServiceServicer_to_server(Echo(), server)
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print("READY", port, flush=True)
server.wait_for_termination()
"""#

    @Test("the Ballast client calls a Python grpcio server: unary, streaming, error trailers, deadline")
    func ballastClientCallsPythonServer() async throws {
        let protoDir = try await Self.compileProtos()
        defer { try? FileManager.default.removeItem(at: protoDir) }
        let script = protoDir.appendingPathComponent("server.py")
        try Self.serverScript.write(to: script, atomically: true, encoding: .utf8)
        let server = try ChildProcess(TestPaths.python, [script.path, protoDir.path])
        defer { server.stop() }
        let ready = try await server.waitForLine { $0.hasPrefix("READY ") }
        let port = try #require(Int(ready.dropFirst("READY ".count)))
        let client = try await GRPCClient.connect(host: "127.0.0.1", port: port)

        var request = EchoRequest()
        request.text = "hi"
        request.payload = Data([0, 1, 2])
        let reply = try await client.unary(EchoService.echo, request: request, responseType: EchoResponse.self,
                                           metadata: ["x-trace": "t1"])
        #expect(reply.text == "hi" && reply.payload == Data([0, 1, 2]) && reply.metadata["x-trace"] == "t1")

        request.count = 20
        var indexes: [Int32] = []
        for try await item in try client.serverStreaming(EchoService.expand, request: request, responseType: EchoResponse.self) {
            indexes.append(item.index)
        }
        #expect(indexes == Array(0..<20))

        request.statusCode = 14
        request.text = "go to the leader"
        request.trailers = ["ballast-leader": "127.0.0.9:7000"]
        let failure = await #expect(throws: GRPCStatus.self) {
            _ = try await client.unary(EchoService.fail, request: request, responseType: EchoResponse.self)
        }
        #expect(failure?.code == .unavailable && failure?.message == "go to the leader")
        #expect(failure?.leaderAddress == "127.0.0.9:7000")

        request.sleepMs = 5000
        let timeout = await #expect(throws: GRPCStatus.self) {
            _ = try await client.unary(EchoService.sleep, request: request, responseType: EchoResponse.self, timeout: .milliseconds(200))
        }
        #expect(timeout?.code == .deadlineExceeded)
        await client.close()
    }
}
