#!/usr/bin/env bash
# The main job: starts a local broker, produces batches and prints them with their offset ranges.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo run --quiet -p ferrokafka-tests --bin demo
