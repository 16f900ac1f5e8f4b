#!/usr/bin/env bash
# Smoke test for tests/mock/mock_cluster.c, using kcat as the client.
#
#   tests/mock/smoke.sh            # builds mock_cluster into a temp dir
#   MOCK_BIN=/tmp/mock_cluster tests/mock/smoke.sh
#
# Needs gcc + librdkafka-dev (unless MOCK_BIN is given) and kcat. Each wait
# has a time limit. Exits non-zero on the first failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
mock_pid=
extra_pids=()

cleanup() {
    local p
    for p in $mock_pid "${extra_pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

REPLY_TIMEOUT=10 # seconds to wait for one protocol reply
KCAT_TIMEOUT=30  # seconds for one kcat run

fail() {
    echo "FAIL: $*" >&2
    if [[ -s $work/mock.err ]]; then
        echo "--- mock stderr (last 20 lines) ---" >&2
        tail -n 20 "$work/mock.err" >&2
    fi
    exit 1
}

# Wait (up to $1 seconds) for the shell command in $2 to succeed.
wait_for() {
    local deadline=$((SECONDS + $1))
    until eval "$2"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

command -v kcat >/dev/null || fail "kcat not found (apt-get install kcat)"

MOCK_BIN=${MOCK_BIN:-}
if [[ -z $MOCK_BIN ]]; then
    MOCK_BIN=$work/mock_cluster
    gcc -O2 -Wall -Wextra -Werror -o "$MOCK_BIN" "$here/mock_cluster.c" -lrdkafka \
        || fail "build failed"
fi
[[ -x $MOCK_BIN ]] || fail "$MOCK_BIN is not executable"

# ---------------------------------------------------------------- start ----
echo "== start mock cluster with 3 brokers"
coproc MOCK { exec "$MOCK_BIN" --brokers 3 2>"$work/mock.err"; }
mock_pid=$MOCK_PID
# Keep our own copies of the pipe fds: bash drops MOCK[] once the coproc ends.
exec {to_mock}>&"${MOCK[1]}" {from_mock}<&"${MOCK[0]}"

IFS= read -r -t "$REPLY_TIMEOUT" -u "$from_mock" line || fail "no BOOTSTRAP line"
echo "  $line"
[[ $line =~ ^BOOTSTRAP\ (127\.0\.0\.1:[0-9]+(,127\.0\.0\.1:[0-9]+){2})$ ]] \
    || fail "unexpected first line: $line"
BOOT=${BASH_REMATCH[1]}
IFS=, read -r -a addrs <<<"$BOOT"

if command -v ss >/dev/null; then
    for a in "${addrs[@]}"; do
        port=${a##*:}
        ss -ltnH "sport = :$port" | grep -q " 127\.0\.0\.1:$port " \
            || fail "port $port is not listening on 127.0.0.1"
        if ss -ltnH "sport = :$port" | grep -vq " 127\.0\.0\.1:$port "; then
            fail "port $port listens on something other than 127.0.0.1"
        fi
    done
    echo "  all ${#addrs[@]} listeners bound to 127.0.0.1 only"
fi

# send CMD: write one command and read its single reply into $reply.
send() {
    printf '%s\n' "$1" >&"$to_mock"
    IFS= read -r -t "$REPLY_TIMEOUT" -u "$from_mock" reply \
        || fail "no reply to '$1'"
    printf '  %-52s -> %s\n' "$1" "$reply"
}
ok() { send "$1"; [[ $reply == OK* ]] || fail "'$1' answered '$reply'"; }
err() { send "$1"; [[ $reply == ERR* ]] || fail "'$1' should fail, got '$reply'"; }
expect() { send "$1"; [[ $reply == "$2" ]] || fail "'$1' answered '$reply', want '$2'"; }

kc() { timeout "$KCAT_TIMEOUT" kcat -b "$BOOT" "$@"; }
produce() { # produce PARTITION LINE...
    local p=$1
    shift
    printf '%s\n' "$@" | kc -P -t t1 -p "$p"
}
consume_all() { kc -C -t t1 -e -q -f '%s\n' | sort; }

expected=()

# ------------------------------------------------------- topic + data ----
echo "== create topic, pin leaders, produce and consume"
ok "ping"
ok "topic t1 4 3"
err "topic t1 4 3"
for p in 0 1 2 3; do ok "leader t1 $p $((p % 3 + 1))"; done

printf '%s\n' m1 m2 m3 m4 m5 m6 | kc -P -t t1 || fail "kcat produce failed"
expected+=(m1 m2 m3 m4 m5 m6)
got=$(consume_all) || fail "kcat consume failed"
want=$(printf '%s\n' "${expected[@]}" | sort)
[[ $got == "$want" ]] || fail "consumed [$got], want [$want]"
echo "  consumed back: $(echo $got)"

kc -L -t t1 | grep -q 'partition 0, leader 1,' || fail "metadata: p0 leader should be 1"

# ---------------------------------------------------------- leader move ----
echo "== move leader of partition 0 from broker 1 to broker 3"
ok "leader t1 0 3"
produce 0 after-move || fail "produce after leader move failed"
expected+=(after-move)
kc -L -t t1 | grep -q 'partition 0, leader 3,' || fail "metadata: p0 leader should be 3"
kc -C -t t1 -p 0 -e -q -f '%s\n' | grep -qx after-move || fail "after-move not in p0"
echo "  partition 0 now led by broker 3, message landed"

# ------------------------------------------------------------ down / up ----
echo "== broker 2 down, then up"
ok "down 2"
ok "leader t1 1 1" # going down does not move leadership; do it by hand
produce 1 while-down || fail "produce while broker 2 is down failed"
expected+=(while-down)
ok "up 2"
err "down 9"
produce 2 after-up || fail "produce to broker 3 after up failed"
expected+=(after-up)
ok "leader t1 1 2"
produce 1 back-on-2 || fail "produce to broker 2 after up failed"
expected+=(back-on-2)

# ------------------------------------------------------ error injection ----
echo "== error injection"
ok "error Produce NOT_LEADER_FOR_PARTITION 2"
produce 1 after-retriable || fail "retriable error was not retried"
expected+=(after-retriable)

ok "error 0 TOPIC_AUTHORIZATION_FAILED 1"
if produce 1 must-be-rejected 2>"$work/kcat.err"; then
    fail "produce should have failed with TOPIC_AUTHORIZATION_FAILED"
fi
grep -q 'authoriz' "$work/kcat.err" || fail "kcat error: $(cat "$work/kcat.err")"
echo "  kcat reported: $(grep -m1 -i 'authoriz' "$work/kcat.err")"

ok "error Produce TOPIC_AUTHORIZATION_FAILED 5"
ok "clear_errors Produce"
produce 1 after-clear || fail "errors were not cleared"
expected+=(after-clear)

ok "error Produce _TRANSPORT 1" # the mock drops the connection
produce 1 after-disconnect || fail "produce after forced disconnect failed"
expected+=(after-disconnect)

# Keep this last: once broker 2 has had a per-broker Produce error queue, the
# 2.0.2 mock ignores cluster-wide Produce errors on broker 2 (see the header
# of mock_cluster.c).
ok "broker_error 2 Produce 6 1"
expect "broker_error_count 2 Produce" "OK 1"
produce 1 after-broker-error || fail "retriable broker error was not retried"
expected+=(after-broker-error)
expect "broker_error_count 2 Produce" "OK 0"

# ------------------------------------------------------------- the rest ----
echo "== other commands"
ok "rtt -1 300"
t0=$(date +%s%N)
kc -L -t t1 >/dev/null || fail "metadata with rtt failed"
ms=$((($(date +%s%N) - t0) / 1000000))
((ms >= 300)) || fail "rtt 300 ms but metadata took ${ms} ms"
echo "  metadata round trip with rtt 300: ${ms} ms"
ok "rtt -1 0"
ok "follower t1 0 2"
ok "coordinator group g1 2"
ok "coordinator transaction tx1 3"
err "coordinator group g1 9"
ok "apiversion Metadata 0 1"
err "apiversion Metadata 0 9"
ok "apiversion Metadata 0 2"
ok "rack -1 rack-a"
ok "topic_error t1 0"

echo "== malformed input is rejected, process stays up"
err "frob"
err ""
err "leader t1 -5 1"
err "leader t1 x 1"
err "topic t2 0 1"
err "error Produce no_such_error"
err "error Produce 6 0"
err "rtt 1 99999999999999999999"
err "ping extra"
ok "ping"

echo "== everything produced is there"
got=$(consume_all) || fail "kcat consume failed"
want=$(printf '%s\n' "${expected[@]}" | sort)
[[ $got == "$want" ]] || fail "consumed [$got], want [$want]"
echo "  ${#expected[@]} messages: $(echo $got)"

# ----------------------------------------------------------------- quit ----
echo "== quit"
ok "quit"
wait_for 10 "! kill -0 $mock_pid 2>/dev/null" || fail "mock did not exit after quit"
rc=0
wait "$mock_pid" || rc=$?
mock_pid=
((rc == 0)) || fail "mock exit status $rc"
for a in "${addrs[@]}"; do
    if command -v ss >/dev/null && [[ -n $(ss -ltnH "sport = :${a##*:}") ]]; then
        fail "port ${a##*:} still listening after quit"
    fi
done
echo "  exited with 0, ports closed"

echo "== EOF on stdin exits"
timeout 10 "$MOCK_BIN" </dev/null >"$work/eof.out" 2>>"$work/mock.err" \
    || fail "mock did not exit cleanly on EOF"
grep -q '^BOOTSTRAP 127\.0\.0\.1:' "$work/eof.out" || fail "no BOOTSTRAP on EOF run"
echo "  ok"

echo "== parent death kills the mock (PR_SET_PDEATHSIG)"
# The intermediate bash is the mock's parent; `sleep` keeps the mock's stdin
# open so only the parent-death signal can end it.
bash -c 'sleep 60 | exec "$1" >"$2" 2>/dev/null & wait' _ "$MOCK_BIN" "$work/orphan.out" &
parent=$!
extra_pids+=("$parent")
wait_for 10 "grep -q BOOTSTRAP '$work/orphan.out' 2>/dev/null" || fail "orphan mock did not start"
child=$(pgrep -P "$parent" -x mock_cluster) || fail "cannot find mock child of $parent"
sleeper=$(pgrep -P "$parent" -x sleep || true)
[[ -n $sleeper ]] && extra_pids+=("$sleeper")
kill -KILL "$parent"
wait "$parent" 2>/dev/null || true
wait_for 10 "! kill -0 $child 2>/dev/null" || fail "mock $child survived its parent"
echo "  mock $child exited after its parent was killed"

echo "PASS"
