// swift-tools-version: 6.0
// Ballast: a durable-execution platform. Module layout follows DESIGN.md:
// pure cores (Raft, Engine, codecs) without I/O, thin shells around them.
import PackageDescription

let package = Package(
    name: "Ballast",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ballast", targets: ["ballast"]),
        .executable(name: "transfers", targets: ["transfers"]),
        .library(name: "BallastSDK", targets: ["BallastSDK"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
    ],
    targets: [
        // System libraries from Debian's -dev packages.
        .systemLibrary(
            name: "CNghttp2", pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"])]),
        .systemLibrary(
            name: "CLZ4", pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"])]),
        .systemLibrary(
            name: "CSQLite", pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]),

        // jemalloc in place of glibc's malloc for the two executables (Debian's libjemalloc-dev):
        // about a tenth more committed operations per second through the cluster. See
        // docs/architecture.md, "Memory".
        .target(name: "CBallastAllocator", linkerSettings: [.linkedLibrary("jemalloc")]),

        // Sans-I/O Raft core.
        .target(name: "BallastRaft"),
        // CRC-32C with the CPU's crc32 instruction (SSE4.2), for the log and the Raft transport.
        .target(name: "CBallastCRC"),
        // Durable log: segmented WAL, hard state, snapshot files, recovery.
        .target(name: "BallastStorage", dependencies: ["BallastRaft", "CBallastCRC"]),
        // Deterministic simulation of whole clusters of the real Raft core.
        .target(name: "BallastSimulation", dependencies: ["BallastRaft"]),

        // Generated protobuf messages shared by the engine, the history store and the wire.
        // Release builds skip the runtime exclusivity checks of the generated storage classes (14% of
        // the engine's instructions; the generated accessors never overlap their accesses) and let
        // clients specialize the generated generic code (cross-module optimization). See
        // docs/engine.md, "Performance notes". Debug builds keep the checks.
        .target(
            name: "BallastProto",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked", "-cross-module-optimization"], .when(configuration: .release))]),
        // The workflow state machine: pure, deterministic.
        .target(
            name: "BallastEngine",
            dependencies: ["BallastProto", .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        // gRPC message framing, LZ4 event batches, service definitions.
        .target(
            name: "BallastWire",
            dependencies: [
                "BallastProto", "CLZ4", "BallastHTTP2",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // nghttp2 sessions bridged to SwiftNIO channels.
        .target(
            name: "BallastHTTP2",
            dependencies: [
                "CNghttp2",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        // The node: Raft driver and transport, API service, dispatch, timers, admin HTTP.
        .target(
            name: "BallastServer",
            dependencies: [
                "BallastRaft", "BallastStorage", "BallastEngine", "BallastProto", "BallastWire",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]),

        // The Swift SDK: client, worker, deterministic workflow runtime with replay, activities.
        .target(
            name: "BallastSDK",
            dependencies: [
                "BallastProto", "BallastWire",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The money-transfer example: SQLite ledger, simulated bank, activities, workflow.
        .target(
            name: "TransfersKit",
            dependencies: [
                "BallastSDK", "CSQLite",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "transfers",
            dependencies: [
                "TransfersKit", "BallastSDK", "CBallastAllocator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        // The fault suite: fault proxy, seeded schedule, invariant checks (issue 8).
        .target(
            name: "BallastChaos",
            dependencies: [
                "BallastSDK", "BallastProto", "BallastWire", "BallastServer", "TransfersKit",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        .executableTarget(
            name: "ballast",
            dependencies: [
                "BallastChaos", "BallastRaft", "BallastStorage", "BallastSimulation", "BallastServer", "BallastWire", "BallastProto",
                "BallastEngine", "BallastSDK", "BallastHTTP2", "CBallastAllocator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        // libFuzzer harness for the network-facing decoders (scripts/fuzz builds it with
        // -sanitize=fuzzer); an ordinary build replays input files through the same decoders.
        .executableTarget(
            name: "BallastFuzz",
            dependencies: [
                "BallastServer", "BallastWire", "BallastProto", "BallastRaft",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]),

        // Seeded input mutation shared by the decoder fuzz tests of several test targets, and the
        // protobuf wire-format walker of the extreme-value tests.
        .target(name: "BallastFuzzSupport", dependencies: ["BallastRaft"], path: "Tests/FuzzSupport"),

        .testTarget(name: "BallastRaftTests", dependencies: ["BallastRaft"]),
        .testTarget(name: "BallastEngineTests", dependencies: ["BallastEngine", "BallastProto", "BallastFuzzSupport"]),
        .testTarget(
            name: "BallastWireTests",
            dependencies: [
                "BallastWire", "BallastProto", "BallastHTTP2", "BallastFuzzSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]),
        .testTarget(
            name: "BallastHTTP2Tests",
            dependencies: [
                "BallastHTTP2", "CNghttp2", "BallastFuzzSupport",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]),
        .testTarget(name: "BallastStorageTests", dependencies: ["BallastStorage", "BallastRaft", "BallastFuzzSupport"]),
        .testTarget(name: "BallastSimulationTests", dependencies: ["BallastSimulation", "BallastRaft"]),
        .testTarget(
            name: "BallastServerTests",
            dependencies: [
                "BallastServer", "BallastRaft", "BallastStorage", "BallastEngine", "BallastProto", "BallastWire",
                "BallastFuzzSupport",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]),
        // Real `ballast server` processes on loopback (needs the ballast product built first).
        .testTarget(
            name: "BallastClusterTests",
            dependencies: [
                "BallastServer", "BallastEngine", "BallastWire", "BallastProto", "BallastSDK", "BallastChaos", "TransfersKit",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        .testTarget(name: "BallastSDKTests", dependencies: ["BallastSDK", "BallastProto"]),
        .testTarget(name: "TransfersKitTests", dependencies: ["TransfersKit", "BallastSDK"]),
        .testTarget(name: "TidyTests", dependencies: []),
        .testTarget(
            name: "BallastChaosTests",
            dependencies: [
                "BallastChaos", "BallastProto", "BallastSDK", "BallastServer", "TransfersKit",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The benchmark command's own parts (histogram, /proc readings), tested in-process.
        .testTarget(name: "BallastBenchTests", dependencies: ["ballast"]),
    ],
    swiftLanguageModes: [.v6]
)
