// swift-tools-version:5.9
// supasync for Swift. `scripts/build-bindings.sh` generates the uniffi sources into
// target/bindings/swift (this package with Sources/SupasyncFFI and Sources/supasync_ffiFFI
// filled in) next to the native library. Not compiled on the project's machines: no
// Swift toolchain exists there (see the README).
import PackageDescription

let package = Package(
    name: "Supasync",
    platforms: [.macOS(.v12), .iOS(.v15)],
    products: [.library(name: "Supasync", targets: ["Supasync"])],
    targets: [
        // The C side of the generated bindings: the header and module map.
        .systemLibrary(name: "supasync_ffiFFI", path: "Sources/supasync_ffiFFI"),
        // The generated Swift (uniffi), linked against libsupasync_ffi.
        .target(
            name: "SupasyncFFI",
            dependencies: ["supasync_ffiFFI"],
            path: "Sources/SupasyncFFI",
            linkerSettings: [.linkedLibrary("supasync_ffi")]
        ),
        // The Swift API apps use.
        .target(name: "Supasync", dependencies: ["SupasyncFFI"], path: "Sources/Supasync"),
    ]
)
