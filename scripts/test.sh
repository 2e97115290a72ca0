#!/usr/bin/env bash
# The README's test command: installs what the tests need, builds with -Werror and runs
# every test, then proves memory safety. .ci/run runs exactly this. Stages (docs/TESTING.md):
#   1. normal   RelWithDebInfo build, the whole ctest suite
#   2. asan     ASan+UBSan Debug build, the whole ctest suite except the packaging test;
#               every sanitizer report of any process (tests and the daemons they start)
#               fails the stage, leaks included
#   3. memcheck the unit tests of build 1 under valgrind memcheck (scripts/memcheck.py)
#   4. fuzz     every libFuzzer target for BLOG_FUZZ_SECONDS (default 30) seconds
#               (scripts/fuzz.sh), then the fuzz.* ctest cases replay every seed
# Each ctest stage ends with ctest's summary line; the script stops at the first failing
# stage, exits non-zero, and prints the time of every stage it ran.
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
stages=" ${BLOG_TEST_STAGES:-normal asan memcheck fuzz} "
jobs=$(nproc)

times=()
t_all=$SECONDS
t_stage=$SECONDS
stage_name=
stage() {
    stage_end
    stage_name=$1
    t_stage=$SECONDS
    echo
    echo "=== stage: $* ($(date -u +%T) UTC)"
}
stage_end() {
    local line
    if [ -n "$stage_name" ]; then
        printf -v line '%-10s %4d s' "$stage_name" $((SECONDS - t_stage))
        times+=("$line")
    fi
    stage_name=
}
report() {
    local rc=$?
    stage_end
    echo
    echo "=== stage times"
    local t
    for t in "${times[@]}"; do
        echo "  $t"
    done
    printf '  %-10s %4d s\n' total $((SECONDS - t_all))
    if [ "$rc" -ne 0 ]; then
        echo "scripts/test.sh: FAILED (exit $rc)" >&2
    fi
}
trap report EXIT
want() {
    [[ "$stages" == *" $1 "* ]]
}

stage deps
scripts/install-deps.sh --test

if want normal; then
    stage normal "RelWithDebInfo build + ctest"
    cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
          -DBLOG_WERROR=ON -DBLOG_BUILD_TESTS=ON
    cmake --build "$build" -j "$jobs"
    # Integration tests start real processes; two at a time fit this 2-core machine.
    ctest --test-dir "$build" --output-on-failure -j 2
fi

if want asan; then
    stage asan "ASan+UBSan Debug build + ctest"
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
    # packages of an ASan build are not a product, and the normal stage ran it.
    san_rc=0
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:log_path=$san_logs/asan \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$san_logs/ubsan \
        ctest --test-dir "$san_build" --output-on-failure -j 2 -E '^integration\.packaging$' \
        || san_rc=$?
    if [ -n "$(ls -A "$san_logs")" ]; then
        for f in "$san_logs"/*; do
            echo "--- $f"
            head -c 20000 "$f"
        done
        echo "asan stage: sanitizer reports above (files in $san_logs)" >&2
        exit 1
    fi
    [ "$san_rc" -eq 0 ] || exit "$san_rc"
fi

if want memcheck; then
    stage memcheck "unit tests under valgrind memcheck (build of the normal stage)"
    if [ ! -f "$build/CTestTestfile.cmake" ]; then
        cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
              -DBLOG_WERROR=ON -DBLOG_BUILD_TESTS=ON
    fi
    cmake --build "$build" -j "$jobs"
    scripts/memcheck.py "$build" -j 2
fi

if want fuzz; then
    stage fuzz "libFuzzer targets, ${fuzz_secs} s each, then the seed replays"
    BLOG_FUZZ_BUILD_DIR=$fuzz_build scripts/fuzz.sh "$fuzz_secs"
    # fuzz.sh builds only the fuzz targets; the fuzz.* ctest cases replay every seed
    # (and every crash turned into a seed) once.
    ctest --test-dir "$fuzz_build" --output-on-failure -L fuzz
fi
