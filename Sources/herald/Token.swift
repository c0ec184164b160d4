import ArgumentParser
import Foundation
import HeraldCore
import HeraldServer

/// `herald token`: mints a subscriber JWT, for trying scopes and publish rights by hand
/// and for backends that want to see what a valid token looks like.
struct Token: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Print an HS256 subscriber JWT signed with auth.jwtSecret (or $HERALD_JWT_SECRET).",
        discussion: """
            Example: herald token --sub ada --publish '{"type":["chat.message"],"from":["ada"]}' --ttl 3600
            """
    )

    @Option(help: "Configuration file whose auth.jwtSecret signs the token.")
    var config = "config.json"
    @Option(help: "Subject (sub claim).")
    var sub: String?
    @Option(help: "herald.scope: a pattern ANDed with every subscription of the holder.")
    var scope: String?
    @Option(help: "herald.publish: a pattern every event the holder publishes must match.")
    var publish: String?
    @Option(help: "Audience (aud claim).")
    var aud: String?
    @Option(help: "Seconds until the token expires.")
    var ttl = 3600

    func run() throws {
        let loaded = try ConfigLoading.load(path: config, required: false)
        guard let secret = loaded.auth.jwtSecret else {
            throw CLIError("no secret: set auth.jwtSecret in \(config) or HERALD_JWT_SECRET")
        }
        guard ttl > 0 else { throw ValidationError("--ttl must be positive") }
        let now = Int(Date().timeIntervalSince1970)
        var claims: [JSONValue.Member] = [.init("iat", .number(Double(now))), .init("exp", .number(Double(now + ttl)))]
        if let sub { claims.append(.init("sub", .string(sub))) }
        if let aud { claims.append(.init("aud", .string(aud))) }
        for (name, text) in [("herald.scope", scope), ("herald.publish", publish)] {
            guard let text else { continue }
            do throws(HeraldError) {
                let pattern = try Pattern(parsing: Array(text.utf8))
                claims.append(.init(name, pattern.value))
            } catch {
                throw CLIError("--\(name.dropFirst("herald.".count)) is not a valid pattern: \(error)")
            }
        }
        print(HeraldServer.signToken(claims: .object(claims), secret: secret))
    }
}
