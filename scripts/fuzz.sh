#!/usr/bin/env bash
# Builds every libFuzzer target (clang, -DBLOG_FUZZ=ON) into build-fuzz and runs each one
# for a bounded time, seeded from tests/fuzz/corpus/<name>: fuzz_<prefix>_<name> uses
# corpus/<prefix>_<name> when it exists (fuzz_node_json -> corpus/node_json), else
# corpus/<name> (fuzz_lb_http -> corpus/http).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     SECONDS per target, default 60
#
# New inputs go to a scratch corpus under the build dir, never into the repo. Crash inputs
# are kept in build-fuzz/fuzz-artifacts/; turn each into a seed (and a unit test) before
# fixing it. Exits non-zero when any target crashes, times out or fails to build.
# Environment: BLOG_FUZZ_BUILD_DIR (default build-fuzz), BLOG_FUZZ_JOBS (ninja -j, default 2).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
shift || true
if ! [[ "$secs" =~ ^[0-9]+$ ]]; then
    echo "usage: $0 [SECONDS] [TARGET...]" >&2
    exit 2
fi
build=${BLOG_FUZZ_BUILD_DIR:-$root/build-fuzz}
jobs=${BLOG_FUZZ_JOBS:-2}

if ! command -v clang >/dev/null; then
    echo "fuzz.sh: clang is required (apt-get install clang)" >&2
    exit 2
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for src in "$root"/tests/fuzz/fuzz_*.c; do
        [ -e "$src" ] || continue
        targets+=("$(basename "$src" .c)")
    done
fi
if [ ${#targets[@]} -eq 0 ]; then
    echo "fuzz.sh: no fuzz targets in tests/fuzz" >&2
    exit 2
fi

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DBLOG_FUZZ=ON \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$build" -j "$jobs" "${targets[@]}"

failed=()
mkdir -p "$build/fuzz-artifacts"
for t in "${targets[@]}"; do
    name=${t#fuzz_}                       # fuzz_node_json -> corpus/node_json if it
    [ -d "$root/tests/fuzz/corpus/$name" ] || name=${name#*_}   # exists, else fuzz_lb_http -> http
    seeds="$root/tests/fuzz/corpus/$name"
    work="$build/fuzz-corpus/$name"
    mkdir -p "$work"
    args=("$work")
    [ -d "$seeds" ] && args+=("$seeds")
    bin="$build/tests/fuzz/$t"
    echo "== $t: ${secs}s, seeds ${seeds#"$root"/}"
    # -timeout: one input taking over 10 s is a hang; -rss_limit_mb bounds memory.
    if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
            -artifact_prefix="$build/fuzz-artifacts/$t-" -print_final_stats=1 \
            "${args[@]}" >"$build/fuzz-artifacts/$t.log" 2>&1; then
        echo "!! $t FAILED (log: $build/fuzz-artifacts/$t.log)"
        grep -E 'ERROR|invariant|SUMMARY|Test unit written' "$build/fuzz-artifacts/$t.log" | head -20 || true
        failed+=("$t")
    else
        grep -E '^stat::number_of_executed_units|^Done' "$build/fuzz-artifacts/$t.log" || true
    fi
done

if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzz.sh: failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz.sh: all ${#targets[@]} target(s) ran ${secs}s without a crash"
