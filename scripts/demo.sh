#!/usr/bin/env bash
# The README's demo command: installs the build and runtime packages, builds blogscale and
# runs the demo cluster of examples/local.yaml in the foreground (Ctrl-C stops it all).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBLOG_BUILD_TESTS=OFF
cmake --build build -j "$(nproc)"
exec build/ctl/blogctl -c examples/local.yaml up
