import HeraldCore
import Testing

/// Event identity and type extraction, batches and their limits.
@Suite struct IngestParserTests {
    func parse(_ text: String, format: IngestFormat = .json, limits: IngestLimits = IngestLimits()) throws(HeraldError) -> [IncomingEvent] {
        var tape = JSONTape()
        let bytes = Array(text.utf8)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: bytes)
        return try IngestParser.parse(UnsafeRawBufferPointer(buffer), format: format, limits: limits, tape: &tape)
    }

    @Test(arguments: [
        (#"{"id":"ce","eventId":"eb","type":"t"}"#, "ce", "t"),
        (#"{"eventId":"eb","eventType":"VibrationRecorded"}"#, "eb", "VibrationRecorded"),
        (#"{"eventId":"x","detail-type":"Order Placed","type":""}"#, "x", "Order Placed"),
        (#"{"eventId":"x","eventType":7}"#, "x", "message"),
        (#"{"eventId":"x\u00e9"}"#, "xé", "message"),
    ])
    func identityAndType(json: String, id: String, type: String) throws {
        let event = try #require(try parse(json).first)
        #expect(event.id == id)
        #expect(event.type == type)
    }

    @Test(arguments: [#"{"type":7}"#, #"{"type":["chat.message","herald.presence"]}"#, #"{"type":{"a":1}}"#, #"{"type":null}"#])
    func typeMustBeOneString(json: String) {
        // An array could carry a second type past a permission or the herald.* reservation.
        #expect { try parse(json) } throws: { ($0 as? HeraldError)?.code == .invalidEvent && ($0 as? HeraldError)?.path == "$.type" }
    }

    @Test(arguments: [
        (#"{"type":"herald.presence"}"#, true), (#"{"type":"HERALD.presence"}"#, true), (#"{"type":"Herald.x"}"#, true),
        (#"{"type":"chat.message","eventType":"herald.gap"}"#, true), (#"{"detail-type":"hErAlD.x"}"#, true),
        (#"{"type":"chat.message"}"#, false), (#"{"type":"heraldry"}"#, false), (#"{"eventType":["herald.x"]}"#, false),
    ])
    func reservedTypesAreRecognisedInAnyCase(json: String, reserved: Bool) throws {
        #expect(try parse(json).first?.usesReservedType == reserved)
    }

    @Test func sourceIsKeptAndCompactJSONHasNoInsignificantWhitespace() throws {
        let event = try #require(try parse("{ \"source\" : \"s\",\n \"text\": \"a  b\\n\" ,\"n\" : [ 1 , 2 ] }").first)
        #expect(event.source == "s")
        #expect(String(decoding: event.compactJSON, as: UTF8.self) == #"{"source":"s","text":"a  b\n","n":[1,2]}"#)
    }

    @Test func theExampleEventsParse() throws {
        let vibration =
            #"{"eventId":"a1b2","eventType":"VibrationRecorded","source":"VibrationSensor","data":{"sensorId":"VB-42345","vibrationLevel":12.5,"unit":"m/s²"}}"#
        let event = try #require(try parse(vibration).first)
        #expect(event.type == "VibrationRecorded")
        #expect(event.source == "VibrationSensor")
        let cloud = #"{"specversion":"1.0","id":"9f1c","source":"/payments/api","type":"payment.completed","data":{"amount":129.9}}"#
        #expect(try parse(cloud, format: .cloudEvent).first?.type == "payment.completed")
    }

    @Test(arguments: [
        ("[]", HeraldError.Code.emptyBatch),
        ("[1]", .notAnObject),
        ("null", .notAnObject),
        (#"{"id":1}"#, .invalidEvent),
        (#"{"source":["a"]}"#, .invalidEvent),
        (#"{"a":}"#, .invalidJSON),
    ])
    func refusals(json: String, code: HeraldError.Code) {
        #expect { try parse(json) } throws: { ($0 as? HeraldError)?.code == code }
    }

    @Test func cloudEventsNeedTheirRequiredAttributes() {
        #expect { try parse(#"{"specversion":"1.0","id":"1","source":"s"}"#, format: .cloudEvent) } throws: {
            ($0 as? HeraldError)?.path == "$.type"
        }
        #expect { try parse(#"{"specversion":"0.3","id":"1","source":"s","type":"t"}"#, format: .cloudEvent) } throws: {
            ($0 as? HeraldError)?.code == .invalidCloudEvent
        }
        #expect { try parse(#"{"a":1}"#, format: .cloudEventBatch) } throws: { ($0 as? HeraldError)?.code == .notAnObject }
    }

    @Test func batchLimitsNameTheEvent() {
        let limits = IngestLimits(maxEventBytes: 20, maxBatchEvents: 2)
        #expect { try parse(#"[{"a":1},{"a":2},{"a":3}]"#, limits: limits) } throws: { ($0 as? HeraldError)?.code == .batchTooLarge }
        #expect { try parse(#"[{"a":1},{"a":"0123456789012345678"}]"#, limits: limits) } throws: {
            let error = $0 as? HeraldError
            return error?.code == .eventTooLarge && error?.index == 1
        }
    }

    @Test func formatsFromContentType() {
        #expect(IngestFormat(contentType: "application/json; charset=utf-8") == .json)
        #expect(IngestFormat(contentType: "Application/CloudEvents+JSON") == .cloudEvent)
        #expect(IngestFormat(contentType: "application/cloudevents-batch+json") == .cloudEventBatch)
        #expect(IngestFormat(contentType: "text/plain") == nil)
    }

    @Test func eventEncodingsAreBuiltOnce() throws {
        let json = Array(#"{"type":"a\nb"}"#.utf8)
        let event = json.withUnsafeBytes {
            Event(epoch: StreamEpoch("k3f9")!, seq: 42, id: "i", source: "", type: "a\nb", acceptedAt: 0, json: $0)
        }
        #expect(
            String(decoding: UnsafeRawBufferPointer(event.sseFrame), as: UTF8.self)
                == "id: k3f9:42\nevent: a b\ndata: {\"type\":\"a\\nb\"}\n\n")
        #expect(String(decoding: event.webSocketTail, as: UTF8.self) == #""seq":42,"event":{"type":"a\nb"}}"#)
        #expect(event.jsonText == #"{"type":"a\nb"}"#)
    }
}
