#!/usr/bin/env bash
# The whole test suite: installs the brokers and peers it needs, then runs every
# test of the workspace (unit, property, golden, differential, fake-broker, and
# integration tests against tansu, librdkafka's mock cluster, kcat and kafka-python),
# then every mock-cluster suite a second time on librdkafka 2.16's mock cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --all-targets
cargo test --workspace --doc

# Every suite that runs on librdkafka's mock cluster runs again on librdkafka 2.16's
# (FERROKAFKA_MOCK=2.16, tests/src/mock.rs): 2.0.2 is what Debian ships, 2.16 what
# current clients are tested against.
echo "test.sh: mock suites on librdkafka 2.16's mock cluster"
# One cargo invocation over the workspace: `-p ferrokafka-cli` alone unifies features
# differently and rebuilds tokio and everything above it (disk and ten minutes).
FERROKAFKA_MOCK=2.16 cargo test --workspace \
  --test brokers --test client --test idempotence --test producer_buffer --test groups --test examples \
  --test streaming --test streaming_compacted --test streaming_discovery --test streaming_faults \
  --test streaming_spans --test streaming_start --test streaming_stop \
  --test sasl_data --test transactions --test mock_launcher --test follower_fetch \
  --test groups_kip848 --test streaming_scaleout --test chaos --test statistics --test statistics_workloads \
  --test cli --test kcat_lines --test stream
