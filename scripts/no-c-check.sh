#!/usr/bin/env bash
# Fails when a published crate's normal or build dependencies contain a -sys crate,
# the cc build helper, openssl or cmake. ring (bundled crypto, later) is the one
# allowed exception. The unpublished tests crate is exempt.
set -euo pipefail
cd "$(dirname "$0")/.."
crates=(ferrokafka-protocol ferrokafka-client ferrokafka-cli)
status=0
for c in "${crates[@]}"; do
  tree=$(cargo tree -p "$c" -e normal,build --prefix none)
  bad=$(echo "$tree" | grep -E -- '-sys v|^cc v|^openssl|^cmake v' | sort -u || true)
  if [ -n "$bad" ]; then
    echo "no-C check FAILED for $c:"; echo "$bad" | sed 's/^/    /'; status=1
  else
    echo "no-C check: $c has no C dependency"
  fi
done
exit $status
