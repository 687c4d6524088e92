import BallastWire
import Foundation
import Testing

/// The `nghttp` client (Debian nghttp2-client) reaches the server with prior knowledge.
@Suite("Interop with nghttp")
struct NghttpInteropTests {
    static func framed(_ message: EchoRequest) throws -> Data {
        let body: [UInt8] = try message.serializedBytes()
        var data = Data([0])
        withUnsafeBytes(of: UInt32(body.count).bigEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: body)
        return data
    }

    static func nghttp(port: Int, path: String, body: Data, contentType: String = "application/grpc",
                       extraHeaders: [String] = []) async throws -> String {
        let nghttp = try #require(TestPaths.which("nghttp"), "nghttp is missing (apt-get install nghttp2-client)")
        let dir = try TestPaths.temporaryDirectory("ballast-nghttp")
        defer { try? FileManager.default.removeItem(at: dir) }
        let bodyFile = dir.appendingPathComponent("body")
        try body.write(to: bodyFile)
        var arguments = ["-v", "-t", "10", "-d", bodyFile.path,
                         "-H", "content-type: \(contentType)", "-H", "te: trailers"]
        for header in extraHeaders { arguments += ["-H", header] }
        arguments.append("http://127.0.0.1:\(port)\(path)")
        let (status, output, stderr) = try await ChildProcess.run(nghttp, arguments, timeout: .seconds(30))
        #expect(status == 0, "nghttp failed: \(stderr)")
        return String(decoding: output, as: UTF8.self)
    }

    @Test("an unknown method answers grpc-status 12 (UNIMPLEMENTED) in a trailers-only response")
    func unknownMethod() async throws {
        try await EchoService.withServer { _, port in
            let output = try await Self.nghttp(port: port, path: "/ballast.v1.Nope/Missing", body: try Self.framed(EchoRequest()))
            #expect(output.contains("grpc-status: 12"), "\(output)")
            #expect(output.contains(":status: 200"))
            #expect(output.contains("grpc-message: unknown method /ballast.v1.Nope/Missing"))
        }
    }

    @Test("a unary call over prior-knowledge h2c answers 200, data and grpc-status 0 trailers")
    func unaryCall() async throws {
        try await EchoService.withServer { _, port in
            var request = EchoRequest()
            request.text = "from nghttp"
            let output = try await Self.nghttp(port: port, path: EchoService.echo, body: try Self.framed(request),
                                               contentType: "application/grpc+proto", extraHeaders: ["grpc-timeout: 5S"])
            #expect(output.contains("grpc-status: 0"), "\(output)")
            #expect(output.contains("recv DATA frame"))
            // Trailers: a HEADERS frame with END_STREAM | END_HEADERS after the DATA.
            #expect(output.contains("flags=0x05"))
            #expect(output.contains("from nghttp"))
        }
    }

    @Test("a non-gRPC content type gets HTTP 415")
    func wrongContentType() async throws {
        try await EchoService.withServer { _, port in
            let nghttp = try #require(TestPaths.which("nghttp"))
            let (_, output, _) = try await ChildProcess.run(
                nghttp, ["-v", "-n", "-t", "10", "-H", ":method: POST", "-H", "content-type: text/plain",
                         "http://127.0.0.1:\(port)\(EchoService.echo)"])
            #expect(String(decoding: output, as: UTF8.self).contains(":status: 415"))
        }
    }
}
