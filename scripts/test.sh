#!/usr/bin/env bash
# The whole test suite: installs the brokers and peers it needs, then runs every
# test of the workspace (unit, property, golden, differential, fake-broker, and
# integration tests against tansu, librdkafka's mock cluster, kcat and kafka-python).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --all-targets
cargo test --workspace --doc
