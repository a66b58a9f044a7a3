// swift-tools-version:6.2
// The OpenAPI generator, pinned, as a tool of its own: `ops/openapi-generate` runs it to regenerate
// Sources/HeraldAPI/Generated from OpenAPI/openapi.yaml, and `ops/test` runs it with `--check` so the
// committed code can never drift from the contract. Kept out of the main package so that building Herald
// does not compile the generator (OpenAPIKit, Yams) in every configuration.
import PackageDescription

let package = Package(
    name: "herald-openapi-generator",
    dependencies: [
        .package(url: "https://github.com/apple/swift-openapi-generator.git", exact: "1.14.3"),
    ]
)
