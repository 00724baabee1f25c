#!/usr/bin/env bash
# Push-to-live of examples/catmeow on this host (installed berth: nginx on
# :80, sshd on :22, install.sh's key): from the start of `git push` until
# nginx serves the new body. Cold: a new app each run (first build, empty
# cache); warm: a code-only change of the same app. Median and spread.
# Usage: bench/push.sh [RUNS]      (root, after ./install.sh; default 5)
set -euo pipefail
RUNS=${1:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/push-lib.sh"
trap 'rm -rf "$work"' EXIT

for i in $(seq "$RUNS"); do
  app="benchcold$i-$$"
  checkout "$work/cold-$i"
  push_until "$work/cold-$i" "$app" "Cat dreams meow.."
  berth apps:destroy "$app" --force >/dev/null 2>&1 || true
done | stats | sed 's/^/| push-to-live, cold (new app, empty cache) | /; s/$/ |/'

app="benchwarm-$$"
checkout "$work/warm"
push_until "$work/warm" "$app" "Cat dreams meow.." >/dev/null
for i in $(seq "$RUNS"); do
  sed -i "s/Cat dreams [a-z0-9]*\.\./Cat dreams w$i../" "$work/warm/catmeow.py"
  (cd "$work/warm" && git -c user.name=b -c user.email=b@b commit -q -am "w$i")
  push_until "$work/warm" "$app" "Cat dreams w$i.."
done | stats | sed 's/^/| push-to-live, warm (code-only change) | /; s/$/ |/'
berth apps:destroy "$app" --force >/dev/null 2>&1 || true
