import ArgumentParser
import Foundation
import HeraldCore

/// `herald check-config`: validate a configuration file and list every fault.
struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a configuration file; print every error with its JSON path (exit 1 if any)."
    )

    @Argument(help: "Configuration file.")
    var path: String = "config.json"

    func run() throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError("cannot read \(path)")
        }
        do throws(HeraldConfig.ValidationErrors) {
            let config = try HeraldConfig(parsing: Array(data))
            print(
                "\(path): OK (\(config.routes.count) routes, \(config.auth.publisherKeys.count) publisher keys, listen \(config.listen.host):\(config.listen.port))"
            )
        } catch {
            let text = error.errors.map { ConfigLoading.describe($0, in: Array(data), path: path) }.joined(separator: "\n")
            FileHandle.standardError.write(Data((text + "\n").utf8))
            throw ExitCode(1)
        }
    }
}
