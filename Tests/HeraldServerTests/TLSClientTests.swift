import Foundation
import HeraldClient
import HeraldCore
import HeraldTestSupport
import Testing

/// The built-in client over TLS (what `herald publish` and tests use for https:// and
/// wss://) against a gateway serving `tls.cert`: every transport carries events, and a
/// server it has no reason to trust is refused with a `.tls` error, never talked to.
@Suite struct TLSClientTests {
    /// A self-signed certificate and its key for `names` (subjectAltName entries), in a
    /// fresh directory; made by the `openssl` command line tool.
    static func certificate(_ subjectAltNames: String) throws -> (cert: String, key: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let cert = directory.appendingPathComponent("cert.pem").path
        let key = directory.appendingPathComponent("key.pem").path
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        openssl.arguments = [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", "/CN=herald-test", "-addext", "subjectAltName=\(subjectAltNames)", "-keyout", key, "-out", cert,
        ]
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        guard openssl.terminationStatus == 0 else { throw TestFailure("openssl req exited \(openssl.terminationStatus)") }
        return (cert, key)
    }

    static func secureConfig(_ certificate: (cert: String, key: String)) -> HeraldConfig {
        testConfig { $0.tls = .init(cert: certificate.cert, key: certificate.key) }
    }

    @Test func httpsWssAndSSECarryEventsWhenTheServerIsTrusted() throws {
        let certificate = try Self.certificate("DNS:localhost,IP:127.0.0.1")
        try withTestServer(Self.secureConfig(certificate)) { server in
            let trust = try TLSClientContext(caFile: certificate.cert)
            let ws = try WebSocketClient(
                url: "wss://127.0.0.1:\(server.port)/v1/ws", tls: trust, subprotocols: ["herald.v1"], timeout: .seconds(5))
            try ws.send(text: #"{"op":"subscribe","id":"s","filter":{"type":["t"]}}"#)
            #expect(try ws.receiveJSON()["type"] == .string("subscribed"))
            let sse = try SSEStream(url: "https://localhost:\(server.port)/v1/sse?filter=%7B%7D", tls: trust, timeout: .seconds(5))
            #expect(sse.status == 200)

            let connection = try HTTPConnection(url: "https://localhost:\(server.port)", tls: trust, timeout: .seconds(5))
            for n in 1...3 {  // one keep-alive TLS connection, several requests
                let response = try connection.request(
                    "POST", "/v1/events",
                    headers: [("Authorization", "Bearer \(TestServer.publisherKey)"), ("Content-Type", "application/json")],
                    body: #"{"type":"t","n":\#(n)}"#)
                #expect(response.status == 202)
            }
            #expect(connection.connectionCount == 1)
            for n in 1...3 {
                #expect(try ws.receiveJSON()["event"]?["n"] == .number(Double(n)))
                #expect(try #require(try sse.next(timeout: .seconds(5))).data.contains(#""n":\#(n)"#))
            }
            // A large body crosses several TLS records both ways.
            let big = String(repeating: "x", count: 200_000)
            let large = try connection.request(
                "POST", "/v1/events",
                headers: [("Authorization", "Bearer \(TestServer.publisherKey)"), ("Content-Type", "application/json")],
                body: #"{"type":"t","big":"\#(big)"}"#)
            #expect(large.status == 202)
            guard case .text(let text) = try ws.receive(timeout: .seconds(5)) else { throw TestFailure("no text frame") }
            #expect(text.count > 200_000)
            ws.close()
            sse.close()
        }
    }

    @Test func anUntrustedOrMisnamedServerIsRefusedBeforeAnyRequest() throws {
        let certificate = try Self.certificate("DNS:elsewhere.example")
        try withTestServer(Self.secureConfig(certificate)) { server in
            // No CA given: the system's authorities do not know a self-signed certificate.
            #expect {
                try HTTPClient.request(url: "https://127.0.0.1:\(server.port)/healthz", timeout: .seconds(5))
            } throws: { ($0 as? ClientError)?.kind == .tls && "\($0)".contains("certificate verify failed") }
            // Trusted, but issued for another name.
            let trust = try TLSClientContext(caFile: certificate.cert)
            #expect {
                try HTTPClient.request(url: "https://localhost:\(server.port)/healthz", tls: trust, timeout: .seconds(5))
            } throws: { ($0 as? ClientError)?.kind == .tls && "\($0)".contains("hostname mismatch") }
            #expect {
                try WebSocketClient(url: "wss://127.0.0.1:\(server.port)/v1/ws", tls: trust, timeout: .seconds(5))
            } throws: { ($0 as? ClientError)?.kind == .tls && "\($0)".contains("IP address mismatch") }
            // Plain HTTP on the TLS port gets no answer the client could mistake for one.
            #expect(throws: ClientError.self) {
                try HTTPClient.request(url: "http://127.0.0.1:\(server.port)/healthz", timeout: .seconds(5))
            }
        }
    }

    @Test func aMissingCAFileIsSaidWithItsPath() {
        #expect {
            try TLSClientContext(caFile: "/nonexistent/ca.pem")
        } throws: { ($0 as? ClientError)?.kind == .tls && "\($0)".contains("/nonexistent/ca.pem") }
    }
}
