#!/bin/sh
# Fetches the SARIF 2.1.0 JSON schema (OASIS's, as published in the npm
# package @microsoft/jest-sarif) into loopsan's cache, for the SARIF test
# (tests/sarif.test). Not vendored: it is fetched, checked against a pinned
# SHA-256, and kept outside the tree.
# Usage: tools/fetch-sarif-schema.sh   (prints the schema's path)
set -eu
dir=${XDG_CACHE_HOME:-$HOME/.cache}/loopsan
schema=$dir/sarif-2.1.0-rtm.5.json
sha=2d99159ae54a3eea97f81781cff48780548657c35949f4b7f25e99a2ba4de4f8
if [ -f "$schema" ] && echo "$sha  $schema" | sha256sum -c --status; then
  echo "$schema"
  exit 0
fi
mkdir -p "$dir"
python3 - "$schema" "$sha" <<'PY'
import hashlib, io, sys, tarfile, urllib.request
url = "https://registry.npmjs.org/@microsoft/jest-sarif/-/jest-sarif-1.0.0-beta.0.tgz"
data = urllib.request.urlopen(url, timeout=60).read()
member = tarfile.open(fileobj=io.BytesIO(data)).extractfile("package/lib/schemas/sarif-2.1.0-rtm.5.json")
schema = member.read()
if hashlib.sha256(schema).hexdigest() != sys.argv[2]:
    sys.exit("fetch-sarif-schema: the schema's SHA-256 is not the pinned one")
with open(sys.argv[1], "wb") as out:
    out.write(schema)
PY
echo "$schema"
