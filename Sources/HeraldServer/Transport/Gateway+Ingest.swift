import CLibWebSockets
import HeraldCore
import Logging

/// `POST /v1/events`: the HTTP ingest endpoint (DESIGN §3).
extension Gateway {
    /// Checks what can be checked from the head; the body is read only when it will be used.
    func beginIngest(_ wsi: OpaquePointer, method: String) -> Int32 {
        if method == "OPTIONS" {
            return respond(wsi, status: 204, json: [], extraHeaders: [
                ("access-control-allow-methods", "POST, OPTIONS"),
                ("access-control-allow-headers", "authorization, content-type, ce-id, ce-source, ce-type, ce-specversion, ce-subject, ce-time"),
                ("access-control-max-age", "600"),
            ])
        }
        guard method == "POST" else {
            metrics.rejected["method_not_allowed", default: 0] += 1
            return methodNotAllowed(wsi, method: method, allowed: "POST, OPTIONS")
        }

        // Size first: a body that is too large or of unknown length is never read.
        guard let lengthText = LWS.header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH), let length = Int(lengthText) else {
            return rejectIngest(wsi, HeraldError(.lengthRequired, "a Content-Length header is required"), status: 411, closeAfter: true)
        }
        guard length <= config.limits.maxBodyBytes else {
            return rejectIngest(wsi, HeraldError(.bodyTooLarge, "the body has \(length) bytes; the limit is \(config.limits.maxBodyBytes)"), status: 413, closeAfter: true)
        }

        let rejection: (HeraldError, Int, [(String, String)])?
        let format: IngestFormat
        var binary: BinaryCloudEvent?
        let contentType = LWS.header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE)
        var credentials = Credentials.anonymous
        if let token = PublisherKeys.bearerToken(LWS.header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION)) {
            do throws(HeraldError) {
                credentials = try authenticate(token)
                rejection = nil
            } catch {
                let message = SubscriberToken.looksLikeJWT(token) ? error.message : "the publisher key is not valid"
                rejection = (HeraldError(.unauthorized, message), 401, [("www-authenticate", "Bearer")])
            }
        } else {
            rejection = (HeraldError(.unauthorized, "publishing needs Authorization: Bearer <publisher key or token>"), 401, [("www-authenticate", "Bearer")])
        }
        if let specversion = LWS.customHeader(wsi, "ce-specversion:") {
            // CloudEvents binary mode: attributes in headers, the data as the body.
            var attributes: [(String, String)] = [("specversion", specversion)]
            for name in ["id", "source", "type", "subject", "time", "dataschema"] {
                if let value = LWS.customHeader(wsi, "ce-\(name):") { attributes.append((name, value)) }
            }
            binary = BinaryCloudEvent(attributes: attributes, contentType: contentType)
            format = .cloudEvent
        } else if let contentType, let parsed = IngestFormat(contentType: contentType) {
            format = parsed
        } else {
            let got = contentType.map { "\"\($0)\"" } ?? "none"
            let error = HeraldError(.unsupportedMediaType, "Content-Type must be application/json, application/cloudevents+json or application/cloudevents-batch+json (got \(got))")
            return deferRejection(wsi, rejection ?? (error, 415, []), length: length)
        }
        if let rejection { return deferRejection(wsi, rejection, length: length) }

        let exchange = HTTPExchange(purpose: .ingest(format, binary: binary, credentials: credentials))
        exchange.body.reserveCapacity(length)
        connections[wsi] = .exchange(exchange)
        if length == 0 { return 0 }  // lws still calls BODY_COMPLETION for an explicit zero length
        return 0
    }

    /// Reads (and drops) the body before answering, so the connection stays usable.
    private func deferRejection(_ wsi: OpaquePointer, _ rejection: (HeraldError, Int, [(String, String)]), length: Int) -> Int32 {
        if length == 0 {
            return rejectIngest(wsi, rejection.0, status: rejection.1, extraHeaders: rejection.2)
        }
        metrics.rejected[rejection.0.code.rawValue, default: 0] += 1
        let response = PendingResponse(status: rejection.1, contentType: "application/json", headers: apiHeaders + rejection.2, body: WireFormat.httpError(rejection.0), closeAfter: false)
        connections[wsi] = .exchange(HTTPExchange(purpose: .reject(response)))
        return 0
    }

    func handleHTTPBody(_ wsi: OpaquePointer, _ chunk: UnsafeRawBufferPointer) -> Int32 {
        guard case .exchange(let exchange)? = connections[wsi] else { return 0 }
        if case .api = exchange.purpose {
            guard exchange.body.count + chunk.count <= config.limits.maxBodyBytes else {
                return respond(wsi, error: HeraldError(.bodyTooLarge, "the body exceeds \(config.limits.maxBodyBytes) bytes"), status: 413, closeAfter: true)
            }
            exchange.body.append(contentsOf: chunk)
            return 0
        }
        guard case .ingest = exchange.purpose else { return 0 }
        guard exchange.body.count + chunk.count <= config.limits.maxBodyBytes else {
            return rejectIngest(wsi, HeraldError(.bodyTooLarge, "the body exceeds \(config.limits.maxBodyBytes) bytes"), status: 413, closeAfter: true)
        }
        exchange.body.append(contentsOf: chunk)
        metrics.ingestBytes += UInt64(chunk.count)
        return 0
    }

    func handleHTTPBodyCompletion(_ wsi: OpaquePointer) -> Int32 {
        guard case .exchange(let exchange)? = connections[wsi] else { return 0 }
        switch exchange.purpose {
        case .reject(let response):
            exchange.response = response
            LWS.requestWritable(wsi)
            return 0
        case .ingest(let format, let binary, let credentials):
            var body = exchange.body
            if let binary {
                do throws(HeraldError) {
                    body = try binaryCloudEventJSON(binary, data: body)
                } catch {
                    return rejectIngest(wsi, error, status: 400)
                }
            }
            return body.withUnsafeBytes { bytes -> Int32 in
                do throws(HeraldError) {
                    let events = try IngestParser.parse(bytes, format: format, limits: config.limits.ingest, tape: &ingestTape)
                    if let refusal = publishRefusal(events, credentials: credentials, tape: ingestTape, body: bytes) {
                        return rejectIngest(wsi, refusal, status: 403)
                    }
                    let accepted = publish(events, tape: ingestTape, body: bytes)
                    return respond(wsi, status: 202, json: WireFormat.accepted(accepted))
                } catch {
                    let status = [.batchTooLarge, .eventTooLarge].contains(error.code) ? 413 : 400
                    return rejectIngest(wsi, error, status: status)
                }
            }
        case .api(let operation):
            return answer(operation, wsi, body: exchange.body)
        case .respond:
            return 0
        }
    }

    /// Refuses an ingest request and counts it by its error code.
    func rejectIngest(_ wsi: OpaquePointer, _ error: HeraldError, status: Int, extraHeaders: [(String, String)] = [], closeAfter: Bool = false) -> Int32 {
        metrics.rejected[error.code.rawValue, default: 0] += 1
        return respond(wsi, error: error, status: status, extraHeaders: extraHeaders, closeAfter: closeAfter)
    }

    /// Builds the structured form of a binary-mode CloudEvent.
    private func binaryCloudEventJSON(_ binary: BinaryCloudEvent, data: [UInt8]) throws(HeraldError) -> [UInt8] {
        var members = binary.attributes.map { JSONValue.Member($0.0, .string($0.1)) }
        if let contentType = binary.contentType { members.append(.init("datacontenttype", .string(contentType))) }
        if !data.isEmpty {
            let isJSON = binary.contentType.map { $0.lowercased().contains("json") } ?? false
            if isJSON {
                do throws(HeraldError) {
                    members.append(.init("data", try JSONValue(parsing: data, limits: config.limits.ingest.json)))
                } catch {
                    throw HeraldError(.invalidJSON, "the CloudEvent data is not valid JSON: \(error.message)", offset: error.offset)
                }
            } else {
                guard let text = String(validating: data, as: UTF8.self) else {
                    throw HeraldError(.invalidCloudEvent, "binary-mode data must be JSON or UTF-8 text")
                }
                members.append(.init("data", .string(text)))
            }
        }
        var out: [UInt8] = []
        JSONWriter.write(.object(members), into: &out)
        return out
    }
}
