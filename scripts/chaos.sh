#!/usr/bin/env bash
# A seeded chaos run against librdkafka's 3-broker mock cluster (tests/src/chaos/):
#   scripts/chaos.sh [--minutes N] [--seed S] [--mock 2.0.2|2.16]
# Without --seed, a fixed seed and then a random one (printed) run. The invariants are
# checked at the end and printed as a table; a failing run names its seed for a replay.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=2
seed=""
mock="${FERROKAFKA_MOCK:-2.0.2}"
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --mock) mock="$2"; shift 2 ;;
    *) echo "usage: $0 [--minutes N] [--seed S] [--mock 2.0.2|2.16]" >&2; exit 2 ;;
  esac
done
scripts/setup.sh demo
export CHAOS_SECONDS=$((minutes * 60)) FERROKAFKA_MOCK="${mock}"
if [ -n "${seed}" ]; then export CHAOS_SEED="${seed}"; fi
exec cargo test -p ferrokafka-tests --test chaos -- --nocapture
