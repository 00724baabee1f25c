#!/usr/bin/env bash
# Push-to-live of examples/catmeow on this host (installed berth: nginx on
# :80, sshd on :22, install.sh's key): from the start of `git push` until
# nginx serves the new body. Cold: a new app each run (first build, empty
# cache); warm: a code-only change of the same app. Median and spread.
# Usage: bench/push.sh [RUNS]      (root, after ./install.sh; default 5)
set -euo pipefail
RUNS=${1:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
BERTH_ROOT=${BERTH_ROOT:-/var/lib/berth}
key=$BERTH_ROOT/install_key
domain=$(berth domains:report-global | head -n 1)
export GIT_SSH_COMMAND="ssh -i $key -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=$BERTH_ROOT/known_hosts -o LogLevel=ERROR"
work=$(mktemp -d /var/tmp/berth-bench-push.XXXXXX)
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
stats() { python3 -c '
import statistics, sys
v = sorted(float(x) for x in sys.stdin.read().split())
print(f"median {statistics.median(v):.2f} s, min {v[0]:.2f}, max {v[-1]:.2f} (n={len(v)})")'; }

# Pushes, then waits until APP answers BODY through nginx; prints seconds.
push_until() { # dir app body
  local t0 t1
  t0=$(now)
  (cd "$1" && git push -q -f "berth@127.0.0.1:$2" main >/dev/null 2>&1)
  until [ "$(curl -s -m 2 -H "Host: $2.$domain" http://127.0.0.1/)" = "$3" ]; do sleep 0.01; done
  t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}

checkout() { # dir
  cp -a "$here/examples/catmeow" "$1"
  (cd "$1" && git init -q -b main && git add . && git -c user.name=b -c user.email=b@b commit -q -m catmeow)
}

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
