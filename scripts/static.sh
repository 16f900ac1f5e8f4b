#!/usr/bin/env bash
# Builds the `ferrokafka` CLI as a fully static musl binary (TLS included), checks that it
# is static, and runs the CLI test suites (plain: tansu, the mock cluster, kcat,
# kafka-python; TLS: tansu behind stunnel; `stream`) against that binary.
#
#   scripts/static.sh                    # x86_64: build, check, test (what CI runs)
#   scripts/static.sh --build            # x86_64: build and check only
#   scripts/static.sh --aarch64          # aarch64: cross-build with Debian's gcc-aarch64-linux-gnu,
#                                        # then run the same suites under qemu-user
#   scripts/static.sh --aarch64 --build  # aarch64: build and check only
#
# The binary lands in target/<target>/static/ferrokafka.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-musl
alias=static
build_only=false
for arg in "$@"; do
    case "$arg" in
        --aarch64) target=aarch64-unknown-linux-musl alias=static-aarch64 ;;
        --build) build_only=true ;;
        *) echo "usage: scripts/static.sh [--aarch64] [--build]" >&2; exit 2 ;;
    esac
done

if [ "$target" = aarch64-unknown-linux-musl ]; then
    need=()
    command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
    [ "$build_only" = true ] || command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
    if [ ${#need[@]} -gt 0 ]; then
        SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
        $SUDO apt-get install -y -q "${need[@]}"
    fi
fi
if ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target"
fi
cargo "$alias" # aliases in .cargo/config.toml
bin="$PWD/target/$target/static/ferrokafka"

# Static means: no interpreter, no needed libraries.
if readelf -l "$bin" | grep -q INTERP || readelf -d "$bin" 2>/dev/null | grep -q NEEDED; then
    echo "static: $bin is dynamically linked:" >&2
    readelf -l -d "$bin" | grep -E 'INTERP|NEEDED' >&2
    exit 1
fi
size=$(stat -c %s "$bin")
echo "static: $bin ($target) is static, $size bytes ($(awk "BEGIN{printf \"%.1f\", $size/1048576}") MiB, stripped)"
if [ "$target" = x86_64-unknown-linux-musl ]; then
    ldd "$bin" 2>&1 | grep -Eq 'not a dynamic executable|statically linked' || { ldd "$bin"; exit 1; }
    run="$bin"
else
    # The suites run the binary through a wrapper that starts it under qemu-user.
    run="$PWD/target/$target/static/ferrokafka-qemu"
    printf '#!/bin/sh\nexec qemu-aarch64 %s "$@"\n' "$bin" > "$run"
    chmod +x "$run"
fi
"$run" --version

[ "$build_only" = true ] && exit 0
scripts/setup.sh
FERROKAFKA_BIN="$run" cargo test --workspace --test cli --test cli_tls --test stream --test cli_sasl
