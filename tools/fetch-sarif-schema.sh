#!/bin/sh
# Fetches the SARIF 2.1.0 JSON schema (OASIS's, as published in the npm
# package @microsoft/jest-sarif) into loopsan's cache, for the SARIF test
# (tests/sarif.test). Not vendored: it is fetched with npm, checked against
# a pinned SHA-256, and kept outside the tree.
# Usage: tools/fetch-sarif-schema.sh   (prints the schema's path)
set -eu
pkg=$(sh "$(dirname "$0")/fetch-npm.sh" @microsoft/jest-sarif@1.0.0-beta.0 \
  748e2c3d1a842e7bb258416685c7ea3a0da40005b72267b2052c2856d48ad102)
schema=$pkg/lib/schemas/sarif-2.1.0-rtm.5.json
echo "2d99159ae54a3eea97f81781cff48780548657c35949f4b7f25e99a2ba4de4f8  $schema" | sha256sum -c --status ||
  { echo "fetch-sarif-schema: the schema's SHA-256 is not the pinned one" >&2; exit 1; }
echo "$schema"
