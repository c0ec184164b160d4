// swift-tools-version:6.1
import PackageDescription

// MARK: - Dependencies

let argumentParser: Package.Dependency = .package(
    url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0")
let swiftLog: Package.Dependency = .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0")
let swiftCollections: Package.Dependency = .package(
    url: "https://github.com/apple/swift-collections.git", from: "1.1.0")

let argumentParserProduct: Target.Dependency = .product(name: "ArgumentParser", package: "swift-argument-parser")
let loggingProduct: Target.Dependency = .product(name: "Logging", package: "swift-log")
let dequeProduct: Target.Dependency = .product(name: "DequeModule", package: "swift-collections")

let package = Package(
    name: "Herald",
    products: [
        .executable(name: "herald", targets: ["herald"]),
        .library(name: "HeraldCore", targets: ["HeraldCore"]),
        .library(name: "HeraldServer", targets: ["HeraldServer"]),
        // The seeded event corpus, shared by the tests and the benchmark package.
        .library(name: "HeraldPatternCorpus", targets: ["HeraldPatternCorpus"]),
    ],
    dependencies: [argumentParser, swiftLog, swiftCollections],
    targets: [
        // MARK: - C boundary

        .systemLibrary(
            name: "CLibWebSockets",
            pkgConfig: "libwebsockets",
            providers: [.apt(["libwebsockets-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),

        // MARK: - Pure core (no I/O, no Foundation)

        .target(name: "HeraldCore", dependencies: [dequeProduct]),

        // MARK: - Durable event log (POSIX files, a writer thread)

        .target(name: "HeraldStorage", dependencies: ["HeraldCore"]),

        // MARK: - Cluster (Redis through hiredis, on threads of its own)

        .target(name: "HeraldCluster", dependencies: ["CHiredis", "HeraldCore"]),

        // MARK: - libwebsockets glue

        .target(
            name: "HeraldServer",
            dependencies: ["CLibWebSockets", "COpenSSL", "HeraldCore", "HeraldStorage", "HeraldCluster", loggingProduct]
        ),

        // MARK: - Executable

        .executableTarget(
            name: "herald",
            dependencies: ["HeraldServer", "HeraldCore", "HeraldClient", "HeraldLoad", argumentParserProduct, loggingProduct]
        ),

        // MARK: - Client (blocking HTTP / WebSocket / SSE over POSIX sockets, for the CLI and tests)

        .target(name: "HeraldClient", dependencies: ["COpenSSL", "HeraldCore"]),

        // MARK: - Load generator (`herald bench`: epoll, thousands of subscribers, any gateway by URL templates)

        .systemLibrary(name: "CEpoll"),
        .target(
            name: "HeraldLoad",
            dependencies: ["CEpoll", "HeraldClient", "HeraldCore", .product(name: "HeapModule", package: "swift-collections")]),

        // MARK: - Tests

        .target(
            name: "HeraldTestSupport",
            dependencies: ["HeraldServer", "HeraldClient", "HeraldCore", loggingProduct],
            path: "Sources/HeraldTestSupport"
        ),
        .target(name: "HeraldPatternCorpus", dependencies: ["HeraldCore"]),
        .testTarget(name: "HeraldCoreTests", dependencies: ["HeraldCore", "HeraldPatternCorpus"]),
        .testTarget(name: "HeraldClientTests", dependencies: ["HeraldClient", "HeraldCore"]),
        .testTarget(name: "HeraldLoadTests", dependencies: ["HeraldLoad", "HeraldTestSupport", "HeraldServer", "HeraldClient"]),
        .testTarget(name: "HeraldStorageTests", dependencies: ["HeraldStorage", "HeraldCore"]),
        .testTarget(name: "HeraldClusterTests", dependencies: ["HeraldCluster", "HeraldCore"]),
        .testTarget(
            name: "HeraldServerTests",
            dependencies: ["HeraldServer", "HeraldClient", "HeraldCore", "HeraldTestSupport"]
        ),
    ]
)

// MARK: - Strict settings for every Swift target

for target in package.targets where target.type != .system {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    settings.append(.enableUpcomingFeature("InternalImportsByDefault"))
    target.swiftSettings = settings
}
