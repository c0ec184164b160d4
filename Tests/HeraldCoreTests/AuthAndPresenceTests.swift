import HeraldCore
import Testing

/// Subscriber JWT verification (with a stand-in MAC; the OpenSSL HMAC is checked against a
/// published vector in the server tests), base64url, presence membership and messages.
@Suite struct AuthAndPresenceTests {
    /// A keyed 32-byte digest standing in for HMAC-SHA256: any change to key or message changes it.
    static func mac(_ key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for round in 0..<4 {
            for byte in key + [UInt8(round)] + message { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
            for shift in stride(from: 0, to: 64, by: 8) { out.append(UInt8(truncatingIfNeeded: h >> UInt64(shift))) }
        }
        return out
    }

    let secret = Array("a-secret-that-is-long-enough-for-hs256".utf8)
    let now: Int64 = 1_800_000_000

    func token(_ claims: String, secret: [UInt8]? = nil) -> String {
        SubscriberToken.sign(claims: json(claims), secret: secret ?? self.secret, hmac: Self.mac)
    }

    func verify(_ text: String, audience: String? = nil) throws(HeraldError) -> SubscriberToken {
        try SubscriberToken(verifying: text, secret: secret, now: now, audience: audience, limits: PatternLimits(), hmac: Self.mac)
    }

    func reason(_ text: String, audience: String? = nil) -> String? {
        do throws(HeraldError) {
            _ = try verify(text, audience: audience)
            return nil
        } catch {
            // An expired token has its own code (clients renew it); every other fault is unauthorized.
            #expect(error.code == (error.message.contains("expired") ? .tokenExpired : .unauthorized))
            return error.message
        }
    }

    @Test func theVerifierSeesTheHeadersAlgorithmAndKeyIDAndTheIssuerIsChecked() throws {
        let header = Base64URL.encode(Array(#"{"alg":"ES256","kid":"ec-1"}"#.utf8))
        let claims = Base64URL.encode(Array(#"{"sub":"ada","iss":"https://auth.example"}"#.utf8))
        let text = "\(header).\(claims).\(Base64URL.encode([1, 2, 3]))"
        var seen: (SubscriberToken.Header, [UInt8], [UInt8])?
        let token = try SubscriberToken(
            verifying: text, now: now, audience: nil, issuer: "https://auth.example", limits: PatternLimits(),
            verify: { header, signed, signature in
                seen = (header, signed, signature)
                return nil
            })
        #expect(token.subject == "ada")
        #expect(seen?.0 == SubscriberToken.Header(algorithm: "ES256", keyID: "ec-1"))
        #expect(seen?.1 == Array("\(header).\(claims)".utf8) && seen?.2 == [1, 2, 3])
        let refusal = HeraldError(.unauthorized, "no")
        #expect(throws: refusal) {
            try SubscriberToken(
                verifying: text, now: now, audience: nil, issuer: nil, limits: PatternLimits(), verify: { _, _, _ in refusal })
        }
        #expect {
            try SubscriberToken(
                verifying: text, now: now, audience: nil, issuer: "https://other.example", limits: PatternLimits(),
                verify: { _, _, _ in nil })
        } throws: { ($0 as? HeraldError)?.message.contains("not issued by") == true }
        let noAlg = "\(Base64URL.encode(Array(#"{"typ":"JWT"}"#.utf8))).\(claims).AA"
        #expect {
            try SubscriberToken(verifying: noAlg, now: now, audience: nil, issuer: nil, limits: PatternLimits(), verify: { _, _, _ in nil })
        } throws: { ($0 as? HeraldError)?.message.contains("alg") == true }
        // The one-secret verifier refuses every other algorithm, "none" included.
        let none = "\(Base64URL.encode(Array(#"{"alg":"none"}"#.utf8))).\(claims)."
        #expect(reason(none)?.contains("HS256") == true)
    }

    @Test func base64URLRoundTripsEveryLength() {
        var bytes: [UInt8] = []
        for n in 0..<70 {
            let encoded = Base64URL.encode(bytes)
            #expect(!encoded.contains("=") && !encoded.contains("+") && !encoded.contains("/"))
            #expect(Base64URL.decode(Array(encoded.utf8)) == bytes)
            bytes.append(UInt8(truncatingIfNeeded: n &* 37 &+ 250))
        }
        #expect(Base64URL.encode(Array("{\"alg\":\"HS256\",\"typ\":\"JWT\"}".utf8)) == "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9")
        #expect(Base64URL.decode(Array("a".utf8)) == nil)
        #expect(Base64URL.decode(Array("ab+c".utf8)) == nil)
        #expect(Base64URL.decode(Array("ab=c".utf8)) == nil)
    }

    @Test func aSignedTokenVerifiesWithItsClaims() throws {
        let text = token(
            #"{"sub":"ada","exp":1800000100,"nbf":1799999900,"herald.scope":{"room":["lobby"]},"herald.publish":{"type":["chat.message"]}}"#
        )
        let verified = try verify(text)
        #expect(verified.subject == "ada")
        #expect(verified.expiresAt == 1_800_000_100)
        #expect(verified.scope == (try Pattern(json(#"{"room":["lobby"]}"#))))
        #expect(verified.publish == (try Pattern(json(#"{"type":["chat.message"]}"#))))
        #expect(SubscriberToken.looksLikeJWT(text))
        #expect(!SubscriberToken.looksLikeJWT("herald-demo-key"))
        let bare = try verify(token(#"{}"#))
        #expect(bare.subject == nil && bare.scope == nil && bare.publish == nil)
    }

    @Test func everyFaultIsRefusedWithItsReason() {
        let good = token(#"{"sub":"ada"}"#)
        let parts = good.split(separator: ".").map(String.init)
        #expect(reason(good) == nil)
        #expect(reason("not-a-jwt")?.contains("not a JWT") == true)
        #expect(reason(parts[0] + "." + parts[1])?.contains("not a JWT") == true)
        #expect(reason(parts[0] + ".%%%." + parts[2])?.contains("not a JWT") == true)
        // A tampered claim, another secret, a stripped signature.
        let forged = parts[0] + "." + Base64URL.encode(Array(#"{"sub":"root"}"#.utf8)) + "." + parts[2]
        #expect(reason(forged)?.contains("signature") == true)
        #expect(reason(token(#"{"sub":"ada"}"#, secret: Array("another-secret-of-enough-length-000".utf8)))?.contains("signature") == true)
        #expect(reason(parts[0] + "." + parts[1] + ".")?.contains("signature") == true)
        // alg "none" and other algorithms are refused before the signature is looked at.
        let none = Base64URL.encode(Array(#"{"alg":"none"}"#.utf8)) + "." + parts[1] + "."
        #expect(reason(none)?.contains("HS256") == true)
        // Time: expired past the leeway, not yet valid, a non-numeric exp.
        #expect(reason(token(#"{"exp":1799999971}"#)) == nil)
        #expect(reason(token(#"{"exp":1799999969}"#)) == "the token expired")
        #expect(reason(token(#"{"nbf":1800000031}"#)) == "the token is not valid yet")
        #expect(reason(token(#"{"exp":"soon"}"#))?.contains("\"exp\"") == true)
        // Audience, when the gateway names one.
        #expect(reason(token(#"{"aud":"herald"}"#), audience: "herald") == nil)
        #expect(reason(token(#"{"aud":["x","herald"]}"#), audience: "herald") == nil)
        #expect(reason(token(#"{"aud":"other"}"#), audience: "herald")?.contains("aud") == true)
        #expect(reason(token(#"{}"#), audience: "herald")?.contains("aud") == true)
        // herald.* claims must be valid patterns.
        #expect(reason(token(#"{"herald.scope":{"a":"b"}}"#))?.contains("herald.scope") == true)
        #expect(reason(token(#"{"herald.publish":[1]}"#))?.contains("herald.publish") == true)
        #expect(reason(String(repeating: "x", count: 10) + ".." + String(repeating: "y", count: 3)) != nil)
    }

    @Test func presenceMembershipIsPerConnection() {
        func info(_ text: String) -> RawJSON { try! RawJSON(parsing: Array(text.utf8)) }
        func joined(_ seq: UInt64) -> Event {
            Array("{}".utf8).withUnsafeBytes {
                Event(epoch: StreamEpoch("e")!, seq: seq, id: "\(seq)", source: "herald", type: "herald.presence", acceptedAt: 0, json: $0)
            }
        }
        var registry = PresenceRegistry()
        registry.join("chat:lobby", .init(client: 1, info: info(#"{"nick":"ada"}"#), transport: "ws", joinEvent: joined(3)))
        registry.join("chat:lobby", .init(client: 2, info: info(#"{"nick":"bob"}"#), transport: "sse", joinEvent: joined(4)))
        registry.join("chat:other", .init(client: 1, info: info(#"{"nick":"ada"}"#), transport: "ws", joinEvent: joined(5)))
        #expect(registry.members(of: "chat:lobby").map(\.client) == [1, 2])
        #expect(registry.groups(of: 1) == ["chat:lobby", "chat:other"])
        #expect(registry.groupCount == 2 && registry.memberCount == 3)
        // Joining again replaces the info and keeps the place.
        registry.join("chat:lobby", .init(client: 1, info: info(#"{"nick": "ada2"}"#), transport: "ws", joinEvent: joined(6)))
        #expect(registry.members(of: "chat:lobby").map(\.info) == [info(#"{"nick":"ada2"}"#), info(#"{"nick":"bob"}"#)])
        #expect(registry.groups(of: 1).count == 2)
        #expect(registry.leave("chat:lobby", client: 3) == nil)
        #expect(registry.leave("chat:lobby", client: 1)?.joinedSeq == 6)
        #expect(registry.leave("chat:lobby", client: 1) == nil)
        #expect(registry.groups(of: 1) == ["chat:other"])
        #expect(registry.leave("chat:other", client: 1) != nil)
        #expect(registry.groups(of: 1).isEmpty && registry.members(of: "chat:other").isEmpty && registry.groupCount == 1)
    }

    @Test func presenceMessagesAreDecodedAndChecked() throws {
        #expect(
            try ClientMessage(decoding: Array(#"{"op":"presence.join","group":"chat:lobby","info":{"nick":"ada"}}"#.utf8))
                == .presenceJoin(group: "chat:lobby", info: try RawJSON(parsing: Array(#"{"nick":"ada"}"#.utf8))))
        #expect(
            try ClientMessage(decoding: Array(#"{"op":"presence.join","group":"g"}"#.utf8)) == .presenceJoin(group: "g", info: .emptyObject)
        )
        #expect(try ClientMessage(decoding: Array(#"{"op":"presence.leave","group":"g"}"#.utf8)) == .presenceLeave(group: "g"))
        let bad: [(String, String)] = [
            (#"{"op":"presence.join"}"#, "$.group"),
            (#"{"op":"presence.join","group":""}"#, "$.group"),
            (#"{"op":"presence.join","group":"\#(String(repeating: "g", count: 129))"}"#, "$.group"),
            (#"{"op":"presence.join","group":"g","info":"ada"}"#, "$.info"),
            (#"{"op":"presence.join","group":"g","info":{"pad":"\#(String(repeating: "x", count: 1100))"}}"#, "$.info"),
            (#"{"op":"presence.leave","group":7}"#, "$.group"),
        ]
        for (text, path) in bad {
            #expect { try ClientMessage(decoding: Array(text.utf8)) } throws: { error in
                (error as? HeraldError)?.code == .invalidMessage && (error as? HeraldError)?.path == path
            }
        }
    }

    @Test func jwtSettingsAreValidated() throws {
        let config = try HeraldConfig(
            parsing: Array(#"{"auth":{"demo":true,"jwtSecret":"0123456789abcdef0123456789abcdef","jwtAudience":"herald"}}"#.utf8))
        #expect(config.auth.demo && config.auth.jwtSecret?.utf8.count == 32 && config.auth.jwtAudience == "herald")
        #expect(try HeraldConfig(parsing: Array("{}".utf8)).auth.demo == false)
        #expect { try HeraldConfig(parsing: Array(#"{"auth":{"jwtSecret":"short","demo":"yes"}}"#.utf8)) } throws: { error in
            Set((error as? HeraldConfig.ValidationErrors)?.errors.compactMap(\.path) ?? []) == ["$.auth.jwtSecret", "$.auth.demo"]
        }
    }
}

private func json(_ text: String) -> JSONValue {
    do { return try JSONValue(parsing: text) } catch { fatalError("invalid JSON in a test: \(error)") }
}
