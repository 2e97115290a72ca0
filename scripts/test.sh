#!/usr/bin/env bash
# The README's test command: installs what the tests need, builds with -Werror and runs
# every test through ctest. .ci/run runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --test

build=${BLOG_TEST_BUILD_DIR:-build-test}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DBLOG_WERROR=ON -DBLOG_BUILD_TESTS=ON
cmake --build "$build" -j "$(nproc)"

# Integration tests start real processes; two at a time fit this 2-core machine.
ctest --test-dir "$build" --output-on-failure -j 2
