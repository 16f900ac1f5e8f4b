#!/usr/bin/env bash
# Fails when a published crate's normal or build dependencies contain a -sys crate,
# openssl, cmake, or the cc build helper for anything but ring. ring (rustls's
# crypto provider, with its bundled assembly and C) is the one allowed exception:
# cc may appear only as ring's build dependency, checked on the inverted tree.
# The unpublished tests crate is exempt.
set -euo pipefail
cd "$(dirname "$0")/.."
crates=(ferrokafka-protocol ferrokafka-client ferrokafka-tls ferrokafka-streaming ferrokafka-cli)
status=0
for c in "${crates[@]}"; do
  tree=$(cargo tree -p "$c" -e normal,build --prefix none)
  bad=$(echo "$tree" | grep -E -- '-sys v|^openssl|^cmake v' | sort -u || true)
  note=""
  if echo "$tree" | grep -q '^cc v'; then
    # Who depends on cc directly: must be ring and nothing else.
    users=$(cargo tree -p "$c" -i cc -e normal,build --depth 1 --prefix none | tail -n +2 | sed 's/ (\*)$//' | sort -u)
    others=$(echo "$users" | grep -v -E '^ring v' || true)
    if [ -n "$others" ]; then
      bad=$(printf '%s\ncc, needed by: %s' "$bad" "$(echo "$others" | tr '\n' ' ')")
    else
      note=" except ring (the only user of cc: $(echo "$users" | tr '\n' ' ' | sed 's/ $//'))"
    fi
  fi
  bad=$(echo "$bad" | sed '/^$/d')
  if [ -n "$bad" ]; then
    echo "no-C check FAILED for $c:"; echo "$bad" | sed 's/^/    /'; status=1
  else
    echo "no-C check: $c has no C dependency$note"
  fi
done
exit $status
