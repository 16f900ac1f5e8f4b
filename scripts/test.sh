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

# The mock suites again on librdkafka 2.16's mock cluster (FERROKAFKA_MOCK=2.16,
# tests/src/mock.rs): the client, producer, broker, group, examples and CLI suites. The
# other streaming suites run on 2.0.2 only so far (issue 16).
echo "test.sh: mock suites on librdkafka 2.16's mock cluster"
FERROKAFKA_MOCK=2.16 cargo test -p ferrokafka-tests \
  --test brokers --test client --test idempotence --test producer_buffer --test groups --test examples
FERROKAFKA_MOCK=2.16 cargo test -p ferrokafka-cli --test cli --test kcat_lines
