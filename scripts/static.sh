#!/usr/bin/env bash
# Builds the `ferrokafka` CLI as a fully static x86_64 musl binary (TLS included), checks
# that it is static, and runs the CLI test suites (plain: tansu, the mock cluster, kcat,
# kafka-python; TLS: tansu behind stunnel) against that binary.
#
#   scripts/static.sh            # build, check, test
#   scripts/static.sh --build    # build and check only
#
# The binary lands in target/x86_64-unknown-linux-musl/static/ferrokafka.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-musl
if ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target"
fi
cargo static # alias in .cargo/config.toml: --profile static -p ferrokafka-cli --target $target
bin="target/$target/static/ferrokafka"

# Static means: no interpreter, no needed libraries.
if ldd_out=$(ldd "$bin" 2>&1); then :; fi
case "$ldd_out" in
    *"not a dynamic executable"* | *"statically linked"*) ;;
    *)
        echo "static: $bin is dynamically linked:" >&2
        echo "$ldd_out" >&2
        exit 1
        ;;
esac
if readelf -d "$bin" 2>/dev/null | grep -q NEEDED; then
    echo "static: $bin needs shared libraries:" >&2
    readelf -d "$bin" | grep NEEDED >&2
    exit 1
fi
size=$(stat -c %s "$bin")
echo "static: $bin is static ($ldd_out), $size bytes ($(awk "BEGIN{printf \"%.1f\", $size/1048576}") MiB, stripped)"
"$bin" --version

[ "${1:-}" = "--build" ] && exit 0
scripts/setup.sh
FERROKAFKA_BIN="$PWD/$bin" cargo test -p ferrokafka-cli --test cli --test tls --test stream
