#!/bin/sh
# A real libuv program from Debian: CMake runs its compiler checks through
# libuv (uv_spawn, pipes, timers). Configures and builds a hello-world
# project in a temporary directory. Usage: cmake-configure.sh SRCDIR
set -e
dir=$(mktemp -d "${TMPDIR:-/tmp}/loopsan-cmake.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cmake -S "$1/tests/real/cmake-hello" -B "$dir" >/dev/null
cmake --build "$dir" >/dev/null
