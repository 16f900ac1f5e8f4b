#!/usr/bin/env bash
# Consume/produce benchmark against librdkafka's mock cluster: ferrokafka (library
# and CLI) next to kcat and rskafka in one run. Arguments go to the bench binary
# (--records N, --reps N, --only client,client, --static-cli PATH), or `streaming [--records N]
# [--reps N]` for the direct-stream benchmark. Prints Markdown tables.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >&2
cargo build --release -q -p ferrokafka-cli
cargo build --release -q --manifest-path bench/Cargo.toml
bench/target/release/ferrokafka-bench --cli target/release/ferrokafka "$@"
