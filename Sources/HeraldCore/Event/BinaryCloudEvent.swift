/// A CloudEvent in binary mode (CloudEvents HTTP binding §3.1): its attributes in
/// `ce-*` header fields, its data as the request body. Herald turns it into the
/// structured form, one JSON object, and ingests that like any CloudEvent.
public struct BinaryCloudEvent: Sendable {
    public var attributes: [(String, String)]
    public var contentType: String?

    /// The attributes Herald maps from `ce-*` fields (besides `ce-specversion`).
    static let attributeNames = ["id", "source", "type", "subject", "time", "dataschema"]

    /// The binary-mode event a request head carries, or nil when it has no
    /// `ce-specversion` (then the body says what it is by its Content-Type).
    public init?(head: HTTPRequestHead) {
        guard let specversion = head.field("ce-specversion") else { return nil }
        attributes = [("specversion", specversion)]
        for name in Self.attributeNames {
            if let value = head.field("ce-" + name) { attributes.append((name, value)) }
        }
        contentType = head.field("content-type")
    }

    /// The structured form with `data`. JSON data (a content type that says json) is
    /// embedded as sent, compacted, never re-encoded through doubles; other data must be
    /// UTF-8 text and becomes a string.
    /// - Throws: `invalid_json` (JSON data that is not), `invalid_cloudevent` (data that
    ///   is neither JSON nor UTF-8 text).
    public func structuredJSON(data: [UInt8], limits: JSONLimits) throws(HeraldError) -> [UInt8] {
        var members = attributes.map { JSONValue.Member($0.0, .string($0.1)) }
        if let contentType { members.append(.init("datacontenttype", .string(contentType))) }
        var out: [UInt8] = []
        JSONWriter.write(.object(members), into: &out)
        guard !data.isEmpty else { return out }
        out.removeLast()  // the closing brace: "data" follows
        out.append(contentsOf: #","data":"#.utf8)
        let isJSON = contentType.map { $0.lowercased().contains("json") } ?? false
        if isJSON {
            do throws(HeraldError) {
                _ = try JSONScanner.scan(data, limits: limits)
            } catch {
                throw HeraldError(.invalidJSON, "the CloudEvent data is not valid JSON: \(error.message)", offset: error.offset)
            }
            out.append(contentsOf: data.withUnsafeBytes { IngestParser.compact($0) })
        } else {
            guard let text = String(validating: data, as: UTF8.self) else {
                throw HeraldError(.invalidCloudEvent, "binary-mode data must be JSON or UTF-8 text")
            }
            JSONWriter.writeString(text, into: &out)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }
}
