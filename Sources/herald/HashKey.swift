import ArgumentParser
import HeraldCore
import HeraldServer

/// `herald hash-key`: the SHA-256 of a publisher key, for `auth.publisherKeys` in config.
struct HashKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash-key",
        abstract: "Print the SHA-256 of a publisher key, as config.json stores it."
    )

    @Argument(help: "The key.")
    var key: String

    func run() throws {
        guard !key.isEmpty else { throw ValidationError("the key must not be empty") }
        print(Hex.encode(HeraldServer.sha256(of: key)))
    }
}
