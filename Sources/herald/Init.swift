import ArgumentParser
import Foundation
import HeraldCore
import HeraldServer

/// `herald init`: a production-shaped start — a configuration without demo tokens or
/// anonymous access, fresh secrets stored as hashes or in an environment file, and the
/// commands to run next.
struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a production-shaped config.json, fresh keys and a JWT secret into a directory.",
        discussion: """
            Writes DIR/config.json (no demo tokens, anonymous off, a publisher and an admin \
            key stored as SHA-256 hashes, a durable event log in DIR/data) and DIR/herald.env \
            (HERALD_JWT_SECRET, readable by the owner only). The keys are printed once: only \
            their hashes are kept. Existing files are never overwritten.
            """
    )

    @Option(help: "Directory to write into (created if missing).")
    var dir = "."

    @Option(help: "Port the gateway will listen on.")
    var port = 8080

    func validate() throws {
        guard (1...65535).contains(port) else { throw ValidationError("--port must be in 1...65535") }
        // The path goes into shell commands it prints and into the env file's comment.
        guard !dir.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw ValidationError("--dir must not contain control characters")
        }
    }

    func run() throws {
        let files = FileManager.default
        let directory = URL(fileURLWithPath: dir).standardizedFileURL
        let config = directory.appendingPathComponent("config.json")
        let environment = directory.appendingPathComponent("herald.env")
        let data = directory.appendingPathComponent("data")
        for existing in [config, environment] where files.fileExists(atPath: existing.path) {
            throw CLIError("\(existing.path) exists already; herald init does not overwrite it (choose another --dir)")
        }
        do {
            try files.createDirectory(at: data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        } catch {
            throw CLIError("cannot create \(data.path): \(error.localizedDescription)")
        }
        let publisherKey = "hp_" + Self.randomToken(bytes: 32)
        let adminKey = "ha_" + Self.randomToken(bytes: 32)
        let jwtSecret = Self.randomToken(bytes: 48)
        let text = Self.configText(
            port: port, dataPath: data.path, publisherHash: Hex.encode(HeraldServer.sha256(of: publisherKey)),
            adminHash: Hex.encode(HeraldServer.sha256(of: adminKey)))
        // The configuration must be one Herald accepts: checked before anything is written.
        do throws(HeraldConfig.ValidationErrors) {
            _ = try HeraldConfig(parsing: Array(text.utf8))
        } catch {
            throw CLIError("herald init made a configuration Herald refuses (a bug): \(error.errors.map(\.message))")
        }
        try Self.write(text, to: config, mode: 0o640)
        let sourceEnvironment = "set -a; . \(Self.shellQuoted(environment.path)); set +a"
        try Self.write(
            "# Secrets for herald serve and herald token (read them with: \(sourceEnvironment))\nHERALD_JWT_SECRET=\(jwtSecret)\n",
            to: environment, mode: 0o600)
        let base = "http://localhost:\(port)"
        let configArgument = Self.shellQuoted(config.path)
        print(
            """
            Wrote \(config.path), \(environment.path) (the JWT secret, owner-only) and the event log directory \(data.path).

            Publisher key — for your backends; only its hash is stored, so this is the one time it is shown:
                \(publisherKey)
            Admin key — for GET /v1/clients and the dashboard's admin panel; shown only now as well:
                \(adminKey)

            Next:
                herald check-config \(configArgument)
                \(sourceEnvironment)
                herald serve --config \(configArgument)

            Subscribe in a second shell (with the same environment: the token is signed with its secret):
                TOKEN=$(herald token --config \(configArgument) --sub alice --ttl 3600)
                curl -N "\(base)/v1/sse?token=$TOKEN&filter=%7B%22type%22%3A%5B%22hello%22%5D%7D"
            and publish from a third; the event appears in the second:
                curl -X POST \(base)/v1/events -H 'Authorization: Bearer \(publisherKey)' \\
                     -H 'Content-Type: application/json' -d '{"type":"hello","text":"world"}'

            Routes, queues and limits: README.md, "Configuration"; running under systemd: docs/herald.service.
            """)
    }

    /// Random bytes from the system's cryptographic generator, as base64url without padding.
    static func randomToken(bytes count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Base64URL.encode(bytes)
    }

    static func configText(port: Int, dataPath: String, publisherHash: String, adminHash: String) -> String {
        var path: [UInt8] = []
        JSONWriter.writeString(dataPath, into: &path)
        return """
            {
              "$comment": "Written by herald init. No demo tokens, no anonymous subscribers: subscribers need a JWT signed with HERALD_JWT_SECRET (herald.env). See README.md, 'Running in production'.",
              "listen": { "host": "0.0.0.0", "port": \(port) },
              "publicDirectory": null,
              "auth": {
                "anonymous": false,
                "demo": false,
                "publisherKeys": [{ "name": "backend", "sha256": "\(publisherHash)" }],
                "adminKeys": [{ "name": "admin", "sha256": "\(adminHash)" }]
              },
              "routes": {},
              "delivery": {
                "queue": { "maxMessages": 1000, "maxBytes": 1048576, "policy": "drop-oldest" },
                "deadlineMs": 100
              },
              "storage": { "path": \(String(decoding: path, as: UTF8.self)), "fsync": "batch" },
              "history": { "maxEvents": 100000, "maxBytes": 268435456, "maxAgeSeconds": 86400 },
              "log": { "level": "info", "format": "json", "lwsLevel": "warn" }
            }

            """
    }

    /// Creates `url` with `mode` from the start (O_EXCL: never over a file that appeared
    /// since it was checked; no moment in which a secret is readable by others).
    private static func write(_ text: String, to url: URL, mode: mode_t) throws {
        let descriptor = open(url.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw CLIError("cannot create \(url.path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { throw CLIError("cannot write \(url.path): \(String(cString: strerror(errno)))") }
            written += count
        }
        guard fsync(descriptor) == 0 else { throw CLIError("cannot write \(url.path): \(String(cString: strerror(errno)))") }
    }

    /// `text` as one shell word (single quotes; a quote inside becomes '\'').
    static func shellQuoted(_ text: String) -> String {
        let plain = text.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "/._-:+@%".unicodeScalars.contains($0) }
        return plain ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
