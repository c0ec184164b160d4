import ArgumentParser
import Foundation
import HeraldClient
import HeraldCore

/// `herald publish`: post events from a file or stdin to a gateway.
struct Publish: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish events: one JSON object, a JSON array (a batch), or JSON Lines.",
        discussion: """
            Reads FILE (or standard input when FILE is - or absent) and POSTs it to \
            <url>/v1/events. JSON Lines input is sent in batches of --batch-size events. \
            Prints the gateway's answer for each request. Exit status: 0 when every \
            request was accepted, 1 when the gateway refused one, 2 on a local error.
            """
    )

    @Argument(help: "Events file; - or absent for standard input.")
    var file: String = "-"

    @Option(help: "Gateway base URL (http:// or https://).")
    var url: String = "http://127.0.0.1:8080"

    @Option(help: "PEM file of the certificates to trust for an https:// URL (default: the system's).")
    var cacert: String?

    @Option(help: "Publisher key (default: $HERALD_PUBLISHER_KEY).")
    var key: String?

    @Option(help: "Content-Type to send (application/json, application/cloudevents+json, application/cloudevents-batch+json).")
    var contentType: String = "application/json"

    @Option(help: "Events per request for JSON Lines input.")
    var batchSize: Int = 100

    func run() throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
        guard let key = key ?? ProcessInfo.processInfo.environment["HERALD_PUBLISHER_KEY"], !key.isEmpty else {
            throw ValidationError("a publisher key is needed: --key or HERALD_PUBLISHER_KEY")
        }
        let input: [UInt8]
        if file == "-" {
            input = Array(FileHandle.standardInput.readDataToEndOfFile())
        } else {
            guard let data = FileManager.default.contents(atPath: file) else { throw localError("cannot read \(file)") }
            input = Array(data)
        }
        let bodies = try requestBodies(input)
        let endpoint: EndpointURL
        let tls: TLSClientContext?
        do {
            endpoint = try EndpointURL(parsing: url)
            guard endpoint.scheme.isSecure || cacert == nil else { throw localError("--cacert needs an https:// URL") }
            tls = endpoint.scheme.isSecure ? try TLSClientContext(caFile: cacert) : nil
        } catch let error as ClientError {
            throw localError(error.message)
        }
        let path = (endpoint.path == "/" ? "" : endpoint.path) + "/v1/events"
        var refused = false
        for body in bodies {
            let response: HTTPResponse
            do {
                response = try HTTPClient.request(
                    host: endpoint.host, port: endpoint.port, tls: tls, method: "POST", path: path,
                    headers: [("Authorization", "Bearer \(key)"), ("Content-Type", contentType)], body: body)
            } catch {
                throw localError("cannot reach \(url): \(error.message)")
            }
            if (200..<300).contains(response.status) {
                print(response.bodyText)
            } else {
                refused = true
                FileHandle.standardError.write(Data("HTTP \(response.status): \(response.bodyText)\n".utf8))
            }
        }
        if refused { throw ExitCode(1) }
    }

    /// One JSON text is sent as it is; JSON Lines are grouped into arrays.
    private func requestBodies(_ input: [UInt8]) throws -> [[UInt8]] {
        if (try? JSONScanner.scan(input)) != nil { return [input] }
        var lines: [[UInt8]] = []
        for (number, line) in input.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            let bytes = Array(line)
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            let tape: JSONTape
            do throws(HeraldError) {
                tape = try JSONScanner.scan(bytes)
            } catch {
                throw localError("line \(number + 1): \(error.message)" + (error.offset.map { " at byte \($0)" } ?? ""))
            }
            guard tape.nodes[0].kind == .object else { throw localError("line \(number + 1): an event must be a JSON object") }
            lines.append(bytes)
        }
        guard !lines.isEmpty else { throw localError("no events in the input") }
        return stride(from: 0, to: lines.count, by: batchSize).map { start in
            let batch = lines[start..<min(start + batchSize, lines.count)]
            return Array("[".utf8) + Array(batch.joined(separator: Array(",".utf8))) + Array("]".utf8)
        }
    }

    private func localError(_ message: String) -> any Error {
        FileHandle.standardError.write(Data("herald publish: \(message)\n".utf8))
        return ExitCode(2)
    }
}
