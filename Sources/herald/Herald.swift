import ArgumentParser

/// The `herald` command: a real-time notification gateway and its tools.
@main
struct Herald: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald",
        abstract: "A real-time notification gateway: HTTP ingest, content routing, WebSocket and SSE fan-out.",
        version: "0.1.0",
        subcommands: [Serve.self, Init.self, Publish.self, MatchCommand.self, Bench.self, CheckConfig.self, HashKey.self, Token.self],
        defaultSubcommand: Serve.self
    )
}
