#!/usr/bin/env bash
# Consume/produce benchmark against librdkafka's mock cluster: ferrokafka (library
# and CLI) next to kcat and rskafka in one run. Arguments go to the bench binary
# (--records N, --reps N, --only client,client, --static-cli PATH), or `streaming [--records N]
# [--reps N]` for the direct-stream benchmark, or `memory [--records N] [--value-bytes B]
# [--budget BYTES]` for the stream's peak RSS over a 1 GB backlog on tansu, or `curves [--reps N]
# [--svg PATH]` for CPU against record size and partition count, and RSS against topic size
# (writes docs/cost-curves.svg). Prints Markdown tables.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >&2
cargo build --release -q -p ferrokafka-cli
cargo build --release -q --manifest-path bench/Cargo.toml
case "${1:-}" in
  streaming) bench/target/release/ferrokafka-bench "$@" ;;
  memory) shift; bench/target/release/ferrokafka-bench memory --cli target/release/ferrokafka "$@" ;;
  curves) shift; bench/target/release/ferrokafka-bench curves --cli target/release/ferrokafka "$@" ;;
  *) bench/target/release/ferrokafka-bench --cli target/release/ferrokafka "$@" ;;
esac
