#!/bin/sh
# Fetches speedscope (the flame-graph viewer, from npm) into loopsan's
# cache, for tests/speedscope.test: the folded and chrome reports are loaded
# into it in headless Chromium. Usage: tools/fetch-speedscope.sh (prints
# the folder of its index.html)
set -eu
pkg=$(sh "$(dirname "$0")/fetch-npm.sh" speedscope@1.25.0 \
  2831f1e0d26df914b477e522d78b8485511495a6af81a0b88158f8b48f9e0d03)
echo "$pkg/dist/release"
