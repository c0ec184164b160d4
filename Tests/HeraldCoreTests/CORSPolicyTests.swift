import HeraldCore
import Testing

/// `cors.allowedOrigins`: which pages may use the API, decided from `Origin` and `Host`.
@Suite struct CORSPolicyTests {
    @Test func withoutAListOnlyTheGatewaysOwnPagesMay() {
        let policy = CORSPolicy()
        #expect(policy.decide(origin: nil, host: "gw.example") == .noOrigin)
        #expect(policy.decide(origin: "https://gw.example", host: "gw.example") == .allowed("https://gw.example"))
        #expect(policy.decide(origin: "http://127.0.0.1:8080", host: "127.0.0.1:8080") == .allowed("http://127.0.0.1:8080"))
        // Behind a TLS-terminating proxy the page is https, the request plain: still its own.
        #expect(policy.decide(origin: "https://gw.example", host: "gw.example:443") == .allowed("https://gw.example"))
        #expect(policy.decide(origin: "HTTP://GW.example:80", host: "gw.EXAMPLE") == .allowed("HTTP://GW.example:80"))
        for foreign in ["https://evil.example", "https://gw.example.evil.example", "http://gw.example:8081", "null", "file://", ""] {
            #expect(policy.decide(origin: foreign, host: "gw.example") == .refused(foreign), "\(foreign)")
        }
        #expect(policy.decide(origin: "https://gw.example", host: nil) == .refused("https://gw.example"))
    }

    @Test func listedOriginsAndTheWildcard() {
        let policy = CORSPolicy(allowedOrigins: ["https://app.example.com", "http://localhost:3000"])
        #expect(policy.decide(origin: "https://app.example.com", host: "gw.example") == .allowed("https://app.example.com"))
        #expect(policy.decide(origin: "https://APP.example.com:443", host: "gw.example") == .allowed("https://APP.example.com:443"))
        #expect(policy.decide(origin: "http://localhost:3000", host: "gw.example") == .allowed("http://localhost:3000"))
        #expect(policy.decide(origin: "http://app.example.com", host: "gw.example") == .refused("http://app.example.com"))
        #expect(policy.decide(origin: "http://localhost:3001", host: "gw.example") == .refused("http://localhost:3001"))
        let any = CORSPolicy(allowedOrigins: ["*"])
        #expect(any.allowsAnyOrigin)
        #expect(any.decide(origin: "https://anyone.example", host: "gw.example") == .allowed("*"))
        #expect(any.decide(origin: "null", host: "gw.example") == .allowed("*"))
    }

    @Test func originsAreNormalizedOrRefused() {
        #expect(CORSPolicy.normalized("HTTPS://App.Example.com:443") == "https://app.example.com")
        #expect(CORSPolicy.normalized("http://[::1]:8080") == "http://[::1]:8080")
        for bad in ["app.example.com", "ftp://a", "https://", "https://a/", "https://a/path", "https://u@a", "https://a?x", "null", "*"] {
            #expect(CORSPolicy.normalized(bad) == nil, "\(bad)")
        }
    }

    @Test func theConfigNamesEveryBadOrigin() throws {
        let config = try HeraldConfig(parsing: Array(#"{"cors":{"allowedOrigins":["https://a.example","*"]}}"#.utf8))
        #expect(config.cors.allowedOrigins == ["https://a.example", "*"] && config.cors.policy.allowsAnyOrigin)
        #expect(try HeraldConfig(parsing: Array("{}".utf8)).cors.allowedOrigins.isEmpty)
        let bad = #"{"cors":{"allowedOrigins":["https://a.example/", 7, "a.example"],"origins":1}}"#
        #expect { try HeraldConfig(parsing: Array(bad.utf8)) } throws: { error in
            guard let errors = error as? HeraldConfig.ValidationErrors else { return false }
            return Set(errors.errors.compactMap(\.path)) == [
                "$.cors.allowedOrigins[0]", "$.cors.allowedOrigins[1]", "$.cors.allowedOrigins[2]", "$.cors.origins",
            ]
        }
        #expect(throws: HeraldConfig.ValidationErrors.self) { try HeraldConfig(parsing: Array(#"{"cors":{"allowedOrigins":"*"}}"#.utf8)) }
    }
}
