#!/usr/bin/env bash
# Build time of examples/catmeow, phase by phase: cold (empty build cache:
# pip downloads and installs Flask) and warm (a code-only change: the cached
# virtualenv is reused), as berth's own "Build phases" line reports them.
# berth's overhead = total - compile (what the buildpack itself spends).
# Usage: bench/build.sh [WARM_RUNS]     (root; berth installed; default 5)
set -euo pipefail
RUNS=${1:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
BERTH=${BERTH:-/usr/local/bin/berth}
work=$(mktemp -d /var/tmp/berth-bench-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
export BERTH_ROOT=$work/root BERTH_BUILDPACKS=$here/buildpacks
mkdir -p "$BERTH_ROOT"
BERTH_STACKS=$here/stacks "$BERTH" stacks:build bookworm --cache /var/cache/berth/stacks >/dev/null
"$BERTH" apps:create catmeow >/dev/null
cp -a "$here/examples/catmeow" "$work/src"

phases() { grep -- '-----> Build phases:' | sed 's/-----> Build phases: //'; }
overhead() { python3 -c '
import re, sys
line = sys.stdin.read()
p = {k: float(v) for k, v in re.findall(r"(\w+) ([0-9.]+) s", line)}
print("%.2f" % (p["total"] - p["compile"]))'; }

cold=$("$BERTH" builds:create catmeow "$work/src" | phases)
echo "| catmeow cold build (empty cache) | $cold; berth overhead $(echo "$cold" | overhead) s |"
for i in $(seq "$RUNS"); do
  echo "# change $i" >> "$work/src/catmeow.py"
  warm=$("$BERTH" builds:create catmeow "$work/src" | phases)
  echo "| catmeow warm build $i (code-only change) | $warm; berth overhead $(echo "$warm" | overhead) s |"
done
