#!/usr/bin/env bash
# The main job: starts a local broker (librdkafka's mock cluster), produces lines of
# text, runs a direct-stream word count (the Rust form of Spark's DirectKafkaWordCount)
# printing every batch's offset ranges and counts, crashes and restarts half way, and
# checks the counts in the embedded redb store are exactly once.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh demo
cargo run --quiet -p ferrokafka-tests --bin wordcount
