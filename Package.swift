// swift-tools-version: 6.2
import PackageDescription

let package = Package(
    name: "inplace",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "inplace", targets: ["inplace"]),
        .library(name: "InplaceCore", targets: ["InplaceCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // C libraries from Debian's -dev packages; each target is a module map plus a shim header.
        .systemLibrary(
            name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(
            name: "CCurl", path: "Sources/CCurl", pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(
            name: "CArchive", path: "Sources/CArchive", pkgConfig: "libarchive",
            providers: [.apt(["libarchive-dev"])]),
        .target(
            name: "InplaceCore",
            dependencies: [
                "CSQLite", "CCurl", "CArchive",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]),
        .executableTarget(
            name: "inplace",
            dependencies: [
                "InplaceCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // Benchmarks that print the numbers the issues ask for; run through tools/bench-*.
        .executableTarget(
            name: "inplace-bench",
            dependencies: ["InplaceCore"],
            path: "tools/bench"),
        .testTarget(
            name: "InplaceCoreTests",
            dependencies: ["InplaceCore"]),
    ],
    swiftLanguageModes: [.v6]
)
