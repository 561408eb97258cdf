// swift-tools-version:6.0
import PackageDescription

// Modules are layers; each imports only the ones below it (see DESIGN.md "Modules"):
//   kvserver → KVServer → {KVReplication, KVProtocol}; KVReplication → KVStore → KVIndex → KVLayout
//   → KVEngine → {KVTable, KVLog, KVCache} → KVFileSystem → KVBase; kvbench → Shale (re-exports);
//   kvcluster → KVCluster (etcd client and membership, over SwiftNIO's HTTP/1.1).
//   KVStore re-exports the vocabulary its API speaks (Sources/KVStore/Vocabulary.swift), so
//   KVServer imports KVStore, KVReplication and KVProtocol only. Tools/check-layers.sh checks
//   every import against the table in DESIGN.md.
let package = Package(
    name: "Shale",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Shale", targets: ["Shale"]),
        .executable(name: "kvserver", targets: ["kvserver"]),
        .executable(name: "kvbench", targets: ["kvbench"]),
        .executable(name: "kvcluster", targets: ["kvcluster"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLZ4",
            path: "Sources/CLZ4",
            pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"])]
        ),
        .target(name: "CShaleSupport", path: "Sources/CShaleSupport"),
        .target(name: "KVBase", dependencies: ["CShaleSupport"]),
        .target(name: "KVFileSystem", dependencies: ["KVBase"]),
        .target(name: "KVLog", dependencies: ["KVBase", "KVFileSystem"]),
        .target(name: "KVCache", dependencies: ["KVBase"]),
        .target(name: "KVTable", dependencies: ["KVBase", "KVFileSystem", "KVCache", "CLZ4", "CShaleSupport"]),
        .target(
            name: "KVEngine",
            dependencies: [
                "KVBase", "KVFileSystem", "KVLog", "KVCache", "KVTable", "CShaleSupport",
                .product(name: "Atomics", package: "swift-atomics"),
            ]
        ),
        .target(name: "KVProtocol", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        .target(name: "KVLayout", dependencies: ["KVBase", "KVEngine"]),
        .target(name: "KVIndex", dependencies: ["KVEngine", "KVBase", "KVLayout"]),
        .target(name: "KVStore", dependencies: ["KVEngine", "KVBase", "KVFileSystem", "KVLayout", "KVIndex", .product(name: "Atomics", package: "swift-atomics")]),
        .target(name: "KVReplication", dependencies: ["KVBase", "KVEngine", "KVLayout", "KVStore"]),
        .target(
            name: "KVCluster",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .target(name: "Shale", dependencies: ["KVEngine", "KVStore", "KVReplication", "KVBase", "KVFileSystem", "KVLayout", "KVIndex"]),
        .target(name: "KVTestSupport", dependencies: ["KVBase", "KVFileSystem", "KVEngine"]),
        .target(
            name: "KVServer",
            dependencies: [
                "KVStore", "KVReplication", "KVProtocol", "KVCluster",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]
        ),
        .executableTarget(
            name: "kvserver",
            dependencies: [
                "KVServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tools/kvserver"
        ),
        .executableTarget(
            name: "kvcluster",
            dependencies: ["KVCluster", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Tools/kvcluster"
        ),
        .executableTarget(
            name: "kvbench",
            dependencies: [
                "Shale", "KVBase", "KVProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "Benchmarks/kvbench"
        ),
        .testTarget(name: "KVBaseTests", dependencies: ["KVBase"]),
        .testTarget(name: "KVFileSystemTests", dependencies: ["KVFileSystem", "KVTestSupport"]),
        .testTarget(name: "KVLogTests", dependencies: ["KVLog", "KVFileSystem", "KVTestSupport"]),
        .testTarget(name: "KVCacheTests", dependencies: ["KVCache"]),
        .testTarget(name: "KVProtocolTests", dependencies: ["KVProtocol", .product(name: "NIOCore", package: "swift-nio")]),
        .testTarget(name: "KVTableTests", dependencies: ["KVTable", "KVCache", "KVFileSystem", "KVTestSupport"]),
        .testTarget(name: "KVLayoutTests", dependencies: ["KVLayout"]),
        .testTarget(name: "KVIndexTests", dependencies: ["KVIndex", "KVLayout", "KVBase", "KVTestSupport"]),
        .testTarget(name: "KVStoreTests", dependencies: ["KVStore", "KVEngine", "KVFileSystem", "KVTestSupport", "KVLayout", "KVIndex"]),
        .testTarget(name: "KVReplicationTests", dependencies: ["KVReplication", "KVStore", "KVLayout", "KVEngine", "KVFileSystem", "KVTestSupport"]),
        .testTarget(
            name: "KVServerTests",
            dependencies: [
                "KVServer", "KVStore", "KVEngine", "KVFileSystem", "KVProtocol", "KVBase", "KVTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "KVClusterTests", dependencies: ["KVCluster"]),
        .testTarget(name: "KVEngineTests", dependencies: ["KVEngine", "Shale", "KVFileSystem", "KVLog", "KVTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)

// libFuzzer targets (Tests/fuzz), declared only when SHALE_FUZZ=1: Tools/fuzz.sh builds them
// (-c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library) in .build-fuzz.
// The default build and `swift test` never see them, so neither needs the fuzzer runtime.
if Context.environment["SHALE_FUZZ"] == "1" {
    package.products += [
        .executable(name: "fuzz-resp", targets: ["FuzzRESP"]),
        .executable(name: "fuzz-table", targets: ["FuzzTable"]),
        .executable(name: "fuzz-wal", targets: ["FuzzWAL"]),
        .executable(name: "fuzz-commands", targets: ["FuzzCommands"]),
    ]
    package.targets += [
        .target(name: "FuzzSupport", path: "Tests/fuzz/FuzzSupport"),
        .executableTarget(
            name: "FuzzRESP",
            dependencies: ["FuzzSupport", "KVProtocol", .product(name: "NIOCore", package: "swift-nio")],
            path: "Tests/fuzz/FuzzRESP"
        ),
        .executableTarget(name: "FuzzTable", dependencies: ["FuzzSupport", "KVTable", "KVCache", "KVFileSystem", "KVBase"], path: "Tests/fuzz/FuzzTable"),
        .executableTarget(name: "FuzzWAL", dependencies: ["FuzzSupport", "KVLog", "KVEngine", "KVFileSystem", "KVBase"], path: "Tests/fuzz/FuzzWAL"),
        .executableTarget(
            name: "FuzzCommands",
            dependencies: ["FuzzSupport", "KVServer", "KVProtocol", "KVFileSystem", .product(name: "NIOCore", package: "swift-nio")],
            path: "Tests/fuzz/FuzzCommands"
        ),
    ]
}
