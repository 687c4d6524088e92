#!/usr/bin/env bash
# Regenerates the Swift code for proto/ballast/v1/*.proto into Sources/BallastProto/Generated,
# and for the test-only proto/ballast/v1/testing/*.proto into Tests/BallastWireTests/Generated.
# Builds protoc-gen-swift from the swift-protobuf dependency (about a minute, release) into
# .build-protoc; needs `protoc` (Debian protobuf-compiler). CI never runs this: the output is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { echo "protoc missing: apt-get install protobuf-compiler" >&2; exit 1; }
swift build -c release --product protoc-gen-swift --scratch-path .build-protoc >/dev/null
plugin="$(swift build -c release --product protoc-gen-swift --scratch-path .build-protoc --show-bin-path)/protoc-gen-swift"
out=Sources/BallastProto/Generated
rm -rf "$out" && mkdir -p "$out"
protoc --plugin=protoc-gen-swift="$plugin" \
  --swift_opt=Visibility=Public --swift_opt=FileNaming=PathToUnderscores \
  --proto_path=proto --swift_out="$out" proto/ballast/v1/*.proto
echo "generated $(ls "$out" | wc -l) files in $out"
testing_out=Tests/BallastWireTests/Generated
rm -rf "$testing_out" && mkdir -p "$testing_out"
protoc --plugin=protoc-gen-swift="$plugin" \
  --swift_opt=Visibility=Internal --swift_opt=FileNaming=PathToUnderscores \
  --proto_path=proto --swift_out="$testing_out" proto/ballast/v1/testing/*.proto
echo "generated $(ls "$testing_out" | wc -l) files in $testing_out"
