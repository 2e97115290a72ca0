#!/usr/bin/env bash
# The README's test command: installs what the tests need, builds with -Werror and runs
# every test, then proves memory safety. .ci/run runs exactly this. Stages (docs/TESTING.md):
#   normal    RelWithDebInfo build, the whole ctest suite
#   asan      ASan+UBSan Debug build, the whole ctest suite except the packaging test and
#             the latency-bound tests labelled "timing" (tests/CMakeLists.txt);
#             a sanitizer report of any process (tests and the daemons they start), leaks
#             included, fails the stage
#   memcheck  the unit tests of the normal build under valgrind memcheck (scripts/memcheck.py)
#   fuzz      every libFuzzer target for BLOG_FUZZ_SECONDS (default 30) seconds
#             (scripts/fuzz.sh), then the fuzz.* ctest cases replay every seed
# Each ctest stage ends with ctest's summary line. A failing stage does not stop the later
# ones (one CI run shows every failure); the script exits non-zero when any stage failed
# and ends with the result and time of every stage.
# Environment: BLOG_TEST_BUILD_DIR (build-test), BLOG_SAN_BUILD_DIR (build-test-asan),
# BLOG_FUZZ_BUILD_DIR (build-test-fuzz), BLOG_FUZZ_SECONDS (30),
# BLOG_TEST_STAGES (default "normal asan memcheck fuzz": run only those listed).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

build=${BLOG_TEST_BUILD_DIR:-build-test}
san_build=${BLOG_SAN_BUILD_DIR:-build-test-asan}
fuzz_build=${BLOG_FUZZ_BUILD_DIR:-$root/build-test-fuzz}
fuzz_secs=${BLOG_FUZZ_SECONDS:-30}
stages=${BLOG_TEST_STAGES:-normal asan memcheck fuzz}
jobs=$(nproc)

configure_normal() {
    cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
          -DBLOG_WERROR=ON -DBLOG_BUILD_TESTS=ON
}

stage_normal() {
    configure_normal
    cmake --build "$build" -j "$jobs"
    # Integration tests start real processes; two at a time fit this 2-core machine.
    ctest --test-dir "$build" --output-on-failure -j 2
}

stage_asan() {
    local san_logs rc=0 f
    cmake -S . -B "$san_build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DBLOG_SANITIZE=ON \
          -DBLOG_WERROR=ON -DBLOG_BUILD_TESTS=ON
    cmake --build "$san_build" -j "$jobs"
    # Every process writes its sanitizer reports to san-logs/<tool>.<pid>: the daemons that
    # integration tests start and stop report there too, even when a test does not look at
    # their exit status. Any file there fails the stage.
    san_logs=$(cd "$san_build" && pwd)/san-logs
    rm -rf "$san_logs"
    mkdir -p "$san_logs"
    # The packaging test builds .deb/.rpm from this build dir and installs them for real;
    # packages of an ASan build are not a product, and the normal stage runs that test.
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:log_path=$san_logs/asan \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$san_logs/ubsan \
        ctest --test-dir "$san_build" --output-on-failure -j 2 -E '^integration\.packaging$' -LE timing \
        || rc=$?
    if [ -n "$(ls -A "$san_logs")" ]; then
        for f in "$san_logs"/*; do
            echo "--- $f"
            head -c 20000 "$f"
        done
        echo "asan stage: sanitizer reports above (files in $san_logs)" >&2
        return 1
    fi
    return "$rc"
}

stage_memcheck() {
    [ -f "$build/CTestTestfile.cmake" ] || configure_normal
    cmake --build "$build" -j "$jobs"
    scripts/memcheck.py "$build" -j 2
}

stage_fuzz() {
    local rc=0
    BLOG_FUZZ_BUILD_DIR=$fuzz_build scripts/fuzz.sh "$fuzz_secs" || rc=$?
    # fuzz.sh builds only the fuzz targets (all of them, or it failed above); the fuzz.*
    # ctest cases replay every seed, and every crash turned into a seed, once.
    ctest --test-dir "$fuzz_build" --output-on-failure -L fuzz || rc=$?
    return "$rc"
}

results=()
failed=0
t_all=$SECONDS
report() {
    local r
    echo
    echo "=== stage results"
    for r in "${results[@]}"; do
        echo "  $r"
    done
    printf '  %-10s %-6s %5d s\n' total "" $((SECONDS - t_all))
    # One plain closing line (each ctest stage above prints its own summary too).
    echo "stages: $(grep -c ' ok ' <<<"$(printf '%s\n' "${results[@]}")") passed, $(grep -c ' FAILED ' <<<"$(printf '%s\n' "${results[@]}")") failed"
}
trap report EXIT

# Runs stage <name>: its function in a subshell with set -e, whatever the outcome.
run_stage() {
    local name=$1 desc=$2 t0=$SECONDS rc line
    echo
    echo "=== stage: $name: $desc ($(date -u +%T) UTC)"
    set +e
    (set -e; "stage_$name")
    rc=$?
    set -e
    printf -v line '%-10s %-6s %5d s' "$name" "$([ "$rc" -eq 0 ] && echo ok || echo FAILED)" \
        $((SECONDS - t0))
    results+=("$line")
    [ "$rc" -eq 0 ] || failed=1
}

stage_deps() {
    scripts/install-deps.sh --test
}
run_stage deps "scripts/install-deps.sh --test"
if [ "$failed" -ne 0 ]; then
    exit 1
fi
for s in $stages; do
    case $s in
        normal)   run_stage normal "RelWithDebInfo build + ctest" ;;
        asan)     run_stage asan "ASan+UBSan Debug build + ctest" ;;
        memcheck) run_stage memcheck "unit tests under valgrind memcheck" ;;
        fuzz)     run_stage fuzz "libFuzzer targets, ${fuzz_secs} s each, then the seed replays" ;;
        *)        echo "scripts/test.sh: unknown stage $s" >&2; exit 2 ;;
    esac
done
exit "$failed"
