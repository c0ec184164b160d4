/// An HTTP/1.1 response the gateway sends: status, fields and a body held in memory.
///
/// Head and body are encoded into one buffer so that a small response leaves in one
/// write (a client waiting on a delayed ACK between head and body waits no more).
public struct HTTPServerResponse: Sendable {
    public var status: Int
    public var contentType: String?
    public var fields: [(name: String, value: String)]
    public var body: [UInt8]
    /// The length of a body that is sent separately (a file streamed after the head);
    /// nil when `body` is the body.
    public var separateBodyLength: Int?

    public init(status: Int, contentType: String? = "application/json", fields: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.contentType = contentType
        self.fields = fields
        self.body = body
    }

    /// Appends the encoded response to `out`.
    /// - Parameters:
    ///   - omitBody: a response to HEAD: the head announces the length, no body follows.
    ///   - keepAlive: false adds `Connection: close`.
    public func encode(into out: inout [UInt8], omitBody: Bool, keepAlive: Bool) {
        Self.encodeHead(
            status: status, contentType: contentType, contentLength: separateBodyLength ?? body.count, fields: fields, keepAlive: keepAlive,
            into: &out)
        if !omitBody { out.append(contentsOf: body) }
    }

    /// Appends a status line and header section. `contentLength` nil omits the field
    /// (a stream that ends when the connection closes, e.g. Server-Sent Events).
    public static func encodeHead(
        status: Int, contentType: String?, contentLength: Int?, fields: [(name: String, value: String)], keepAlive: Bool,
        into out: inout [UInt8]
    ) {
        out.append(contentsOf: "HTTP/1.1 ".utf8)
        JSONWriter.writeInteger(status, into: &out)
        out.append(UInt8(ascii: " "))
        out.append(contentsOf: reasonPhrase(status).utf8)
        out.append(contentsOf: "\r\n".utf8)
        if let contentType { appendField("content-type", contentType, to: &out) }
        if let contentLength, status >= 200, status != 204 {
            out.append(contentsOf: "content-length: ".utf8)
            JSONWriter.writeInteger(contentLength, into: &out)
            out.append(contentsOf: "\r\n".utf8)
        }
        for field in fields { appendField(field.name, field.value, to: &out) }
        if !keepAlive { out.append(contentsOf: "connection: close\r\n".utf8) }
        out.append(contentsOf: "\r\n".utf8)
    }

    /// One `name: value` line; a CR, LF or NUL in the value (which only a bug could put
    /// there) becomes a space, so no field can ever split the head.
    private static func appendField(_ name: String, _ value: String, to out: inout [UInt8]) {
        out.append(contentsOf: name.utf8)
        out.append(contentsOf: ": ".utf8)
        for byte in value.utf8 { out.append(byte == 13 || byte == 10 || byte == 0 ? 32 : byte) }
        out.append(contentsOf: "\r\n".utf8)
    }

    /// The reason phrase of the statuses Herald sends (RFC 9110 §15).
    public static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 101: "Switching Protocols"
        case 200: "OK"
        case 202: "Accepted"
        case 204: "No Content"
        case 301: "Moved Permanently"
        case 308: "Permanent Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 411: "Length Required"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 426: "Upgrade Required"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 503: "Service Unavailable"
        case 505: "HTTP Version Not Supported"
        default: "Status"
        }
    }
}
