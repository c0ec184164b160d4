import Foundation
import HeraldCore
import HeraldServer

/// Reading `config.json` and applying the environment's secrets, shared by the commands.
enum ConfigLoading {
    /// The configuration at `path` with `HERALD_PUBLISHER_KEY`, `HERALD_ADMIN_KEY` and
    /// `HERALD_JWT_SECRET` applied; a missing file is
    /// an error unless `path` is the default and absent (then defaults apply).
    static func load(path: String, required: Bool) throws -> HeraldConfig {
        var config: HeraldConfig
        if FileManager.default.fileExists(atPath: path) {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw CLIError("cannot read \(path)")
            }
            do throws(HeraldConfig.ValidationErrors) {
                config = try HeraldConfig(parsing: Array(data))
            } catch {
                throw CLIError(
                    "\(path) is not a valid configuration:\n"
                        + error.errors.map { describe($0, in: Array(data), path: path) }.joined(separator: "\n"))
            }
        } else if required {
            throw CLIError("no configuration file at \(path)")
        } else {
            config = HeraldConfig()
        }
        let environment = ProcessInfo.processInfo.environment
        if let key = environment["HERALD_PUBLISHER_KEY"], !key.isEmpty {
            config.auth.publisherKeys.append(.init(name: "env", sha256: HeraldServer.sha256(of: key)))
        }
        if let key = environment["HERALD_ADMIN_KEY"], !key.isEmpty {
            config.auth.adminKeys.append(.init(name: "env", sha256: HeraldServer.sha256(of: key)))
        }
        if let secret = environment["HERALD_JWT_SECRET"], !secret.isEmpty {
            guard secret.utf8.count >= HeraldConfig.minJWTSecretBytes else {
                throw CLIError("HERALD_JWT_SECRET must have at least \(HeraldConfig.minJWTSecretBytes) bytes")
            }
            config.auth.jwtSecret = secret
        }
        return config
    }
}

extension ConfigLoading {
    /// One fault of a configuration file: `file:line:column: message` and, when it is a
    /// JSON syntax error (it has an offset), the line around the column with a caret under
    /// it — at most 40 characters either side, so that a one-line configuration does not
    /// print its secrets (into a journal, under systemd); else `file: $.json.path: message`.
    static func describe(_ error: HeraldError, in text: [UInt8], path: String) -> String {
        guard let offset = error.offset else { return "\(path): \(error.path ?? "$"): \(error.message)" }
        let position = TextPosition(offset: offset, in: text)
        let characters = Array(position.lineText)
        let at = min(position.column - 1, characters.count)
        let start = max(0, at - 40)
        let end = min(characters.count, at + 40)
        let excerpt = (start > 0 ? "…" : "") + String(characters[start..<end]) + (end < characters.count ? "…" : "")
        // Tabs stay tabs under the line, so the caret lands where the terminal shows the column.
        let pad = (start > 0 ? " " : "") + String(characters[start..<at].map { $0 == "\t" ? "\t" : " " })
        return "\(path):\(position.line):\(position.column): \(error.message)\n    \(excerpt)\n    \(pad)^"
    }
}

/// A failure the CLI reports as one message and a non-zero exit code.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ message: String) { description = message }
}
