#!/usr/bin/env bash
# The whole test suite: installs the brokers and peers it needs, then runs every
# test of the workspace (unit, property, golden, differential, fake-broker, and
# integration tests against tansu, librdkafka's mock cluster, kcat and kafka-python),
# then the mock-cluster suites a second time on librdkafka 2.16's mock cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --all-targets
cargo test --workspace --doc

# The mock suites that pass on librdkafka 2.16's mock cluster, again with
# FERROKAFKA_MOCK=2.16 (tests/src/mock.rs). The consumer-group suites are not among them
# yet: 2.16's mock announces JoinGroup up to v6 and closes the connection on our v6
# JoinGroup (DESIGN.md, broker quirks; issue 16).
echo "test.sh: the mock suites on librdkafka 2.16's mock cluster"
FERROKAFKA_MOCK=2.16 cargo test -p ferrokafka-tests \
  --test brokers --test client --test idempotence --test producer_buffer
FERROKAFKA_MOCK=2.16 cargo test -p ferrokafka-cli --test cli --test kcat_lines
