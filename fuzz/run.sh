#!/usr/bin/env bash
# Builds every fuzz target and runs each for a bounded time with bounded memory.
#
#   fuzz/run.sh                    # 20 s per target (the CI smoke)
#   fuzz/run.sh 1800 response      # a 30-minute campaign of one target
#
# Exits non-zero if a target fails to build, if a stored regression input fails again,
# or if libFuzzer finds a crash, a leak, a timeout or an out-of-memory. Corpora for a run
# start from fuzz/seeds/<target>, fuzz/regressions/<target> and (for the record targets)
# tests/fixtures/records, and are kept in fuzz/corpus/<target> (ignored by git).
set -euo pipefail

cd "$(dirname "$0")"
seconds="${1:-20}"
shift || true
all=(frame response record_set record_batch_crc decompress roundtrip config tls_store checkpoint sasl zstd_vendored)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")

# Toolchain: nightly when installed (machines of this project ship it); otherwise the
# stable toolchain with RUSTC_BOOTSTRAP=1, which accepts -Zsanitizer and ships the ASan
# runtime. Either way the run is real: no target is skipped.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    cargo=(cargo +nightly)
else
    echo "fuzz: no nightly toolchain; using stable with RUSTC_BOOTSTRAP=1" >&2
    export RUSTC_BOOTSTRAP=1
    cargo=(cargo)
fi

if ! command -v cargo-fuzz >/dev/null; then
    root="$HOME/.cache/ferrokafka/cargo-fuzz"
    if [ ! -x "$root/bin/cargo-fuzz" ]; then
        echo "fuzz: installing cargo-fuzz 0.13.2 into $root" >&2
        cargo install cargo-fuzz --version 0.13.2 --locked --root "$root"
    fi
    export PATH="$root/bin:$PATH"
fi

"${cargo[@]}" fuzz build -O
bin="target/x86_64-unknown-linux-gnu/release"
limits=(-rss_limit_mb=512 -malloc_limit_mb=256 -timeout=10)

failed=()
for t in "${targets[@]}"; do
    corpus="corpus/$t"
    mkdir -p "$corpus" "artifacts/$t"
    [ -d "seeds/$t" ] && cp -n seeds/"$t"/* "$corpus"/ 2>/dev/null || true
    case "$t" in
        record_set | record_batch_crc) cp -n ../tests/fixtures/records/*.bin "$corpus"/ || true ;;
    esac
    if [ -d "regressions/$t" ]; then
        if ! "$bin/$t" "${limits[@]}" regressions/"$t"/* >"artifacts/$t/regressions.log" 2>&1; then
            echo "fuzz: $t fails on a stored regression input (artifacts/$t/regressions.log)" >&2
            failed+=("$t")
            continue
        fi
    fi
    log="artifacts/$t/run.log"
    if "$bin/$t" "$corpus" "${limits[@]}" -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" >"$log" 2>&1; then
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
        echo "fuzz: $t clean: $runs runs in ${seconds}s, cov $cov"
    else
        echo "fuzz: $t FAILED (log: fuzz/$log):" >&2
        grep -E 'ERROR|panicked|out-of-memory|Test unit written' "$log" | head -5 >&2 || tail -20 "$log" >&2
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: failing targets: ${failed[*]}" >&2
    exit 1
fi
