#!/bin/sh
# Installs what loopsan needs to build and test on Debian 12 (bookworm).
set -e
pkgs="build-essential autoconf automake libtool pkg-config libuv1-dev libev-dev libevent-dev libunwind-dev
libdw-dev libelf-dev check python3 python3-uvloop python3-gevent cmake memcached tmux
libglib2.0-dev libglib2.0-bin libsystemd-dev python3-gi gir1.2-glib-2.0 nodejs python3-jsonschema chromium
clang libclang-rt-14-dev libglib2.0-tests ltrace uftrace"
missing=""
for p in $pkgs; do
  case "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" in
    ii*) ;;
    *) missing="$missing $p" ;;
  esac
done
if [ -n "$missing" ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086 # one word per package
  $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
# npm: Debian's package, unless the machine's Node.js brings its own
if ! command -v npm >/dev/null; then
  [ "$(id -u)" -eq 0 ] && SUDO="" || SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm || true
fi
# From npm, for the tests only (fetched into ~/.cache/loopsan, not vendored):
# the SARIF 2.1.0 schema (tests/sarif.test) and speedscope (tests/speedscope.test).
if ! sh "$(dirname "$0")/fetch-sarif-schema.sh" >/dev/null; then
  echo "loopsan: could not fetch the SARIF schema: tests/sarif.test will be skipped" >&2
fi
if ! sh "$(dirname "$0")/fetch-speedscope.sh" >/dev/null; then
  echo "loopsan: could not fetch speedscope: tests/speedscope.test will be skipped" >&2
fi
echo "loopsan: build dependencies are installed"
