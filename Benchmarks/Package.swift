// swift-tools-version:6.1
import PackageDescription

// Herald's benchmarks live in their own package so the main build never pulls in
// ordo-one/benchmark (and its malloc interposer). Run from this folder:
//
//     swift package --scratch-path .build-bench benchmark --target JSONScannerBenchmarks
//     swift package --scratch-path .build-bench benchmark --target MatcherBenchmarks
//     swift package --scratch-path .build-bench benchmark --target DeliveryBenchmarks

// MARK: - Dependencies

let herald: Package.Dependency = .package(path: "..")
let benchmark: Package.Dependency = .package(
    url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"])

// SwiftPM names a path dependency after its folder, which differs between clones
// (`main`, `herald`, a CI checkout), so derive it instead of hard-coding it.
let heraldIdentity = String(Context.packageDirectory.split(separator: "/").dropLast().last ?? "herald").lowercased()
let heraldCore: Target.Dependency = .product(name: "HeraldCore", package: heraldIdentity)
let heraldPatternCorpus: Target.Dependency = .product(name: "HeraldPatternCorpus", package: heraldIdentity)
let benchmarkProduct: Target.Dependency = .product(name: "Benchmark", package: "benchmark")
let benchmarkPlugin: Target.PluginUsage = .plugin(name: "BenchmarkPlugin", package: "benchmark")

let package = Package(
    name: "HeraldBenchmarks",
    dependencies: [herald, benchmark],
    targets: [
        // MARK: - JSON scanner

        .executableTarget(
            name: "JSONScannerBenchmarks",
            dependencies: [heraldCore, benchmarkProduct],
            path: "Benchmarks/JSONScannerBenchmarks",
            plugins: [benchmarkPlugin]
        ),

        // MARK: - Subscription matcher

        .executableTarget(
            name: "MatcherBenchmarks",
            dependencies: [heraldCore, heraldPatternCorpus, benchmarkProduct],
            path: "Benchmarks/MatcherBenchmarks",
            plugins: [benchmarkPlugin]
        ),

        // MARK: - Delivery accounting

        .executableTarget(
            name: "DeliveryBenchmarks",
            dependencies: [heraldCore, benchmarkProduct],
            path: "Benchmarks/DeliveryBenchmarks",
            plugins: [benchmarkPlugin]
        ),
    ]
)
