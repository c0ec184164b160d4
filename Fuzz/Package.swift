// swift-tools-version:6.1
import PackageDescription

// Herald's libFuzzer harnesses, in their own package so that the main build never sees
// the fuzzer flags. One executable holds every harness; HERALD_FUZZ names the one a run
// drives. Build and run with scripts/fuzz (`make fuzz`):
//
//     swift build -c release --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer,address
//     HERALD_FUZZ=json .build-fuzz/release/HeraldFuzz corpus/json -max_total_time=60

// SwiftPM names a path dependency after its folder, which differs between clones.
let heraldIdentity = String(Context.packageDirectory.split(separator: "/").dropLast().last ?? "herald").lowercased()

let package = Package(
    name: "HeraldFuzz",
    dependencies: [.package(path: "..")],
    targets: [
        .executableTarget(
            name: "HeraldFuzz",
            dependencies: [.product(name: "HeraldCore", package: heraldIdentity)],
            path: "Sources/HeraldFuzz",
            // libFuzzer brings main(); the harness is LLVMFuzzerTestOneInput.
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        )
    ]
)
