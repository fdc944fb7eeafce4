#!/bin/sh
# Fetches one npm package, pinned by version and by the SHA-256 of its
# tarball, with npm itself, and unpacks it into loopsan's cache (never into
# the tree: tests use such packages, the project does not ship them).
# Usage: tools/fetch-npm.sh NAME@VERSION SHA256   (prints the package's folder)
set -eu
[ $# -eq 2 ] || { echo "usage: $0 NAME@VERSION SHA256" >&2; exit 2; }
spec=$1
sha=$2
cache=${XDG_CACHE_HOME:-$HOME/.cache}/loopsan/npm
dest=$cache/$(printf '%s' "$spec" | tr '/@' '__')
if [ -f "$dest/.sha256" ] && [ "$(cat "$dest/.sha256")" = "$sha" ]; then
  echo "$dest/package"
  exit 0
fi
command -v npm >/dev/null || { echo "fetch-npm: npm is not installed" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack "$spec" --silent >/dev/null 2>"$tmp/err") || {
  cat "$tmp/err" >&2
  echo "fetch-npm: npm could not fetch $spec" >&2
  exit 1
}
tgz=$(ls "$tmp"/*.tgz)
if [ "$(sha256sum "$tgz" | cut -d' ' -f1)" != "$sha" ]; then
  echo "fetch-npm: $spec's SHA-256 is not the pinned one" >&2
  exit 1
fi
rm -rf "$dest"
mkdir -p "$dest"
tar xzf "$tgz" -C "$dest"
echo "$sha" >"$dest/.sha256"
echo "$dest/package"
