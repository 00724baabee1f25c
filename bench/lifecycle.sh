#!/usr/bin/env bash
# Everyday operations on the installed catmeow (root, after ./install.sh):
# releases:rollback until nginx serves the rolled-back body, and how long
# a request's line takes to show in `berth logs catmeow -t`.
# Usage: bench/lifecycle.sh [RUNS]      (default 5)
set -euo pipefail
RUNS=${1:-5}
domain=$(berth domains:report-global | head -n 1)
stats() { python3 -c '
import statistics, sys
v = sorted(float(x) for x in sys.stdin.read().split())
print(f"median {statistics.median(v):.2f} s, min {v[0]:.2f}, max {v[-1]:.2f} (n={len(v)})")'; }
page() { curl -s -m 2 -H "Host: catmeow.$domain" http://127.0.0.1/; }

# Two releases with different bodies to roll between: config vars are part
# of a release, so MESSAGE tells them apart.
berth config:set catmeow MESSAGE=rollback-a >/dev/null
berth config:set catmeow MESSAGE=rollback-b >/dev/null
a=$(berth releases catmeow | awk 'NR==3 { print $1 }')
b=$(berth releases catmeow | awk 'NR==2 { print $1 }')
for i in $(seq "$RUNS"); do
  target=$([ $((i % 2)) = 1 ] && echo "$a" || echo "$b")
  body=$([ "$target" = "$a" ] && echo rollback-a || echo rollback-b)
  t0=$(date +%s.%N)
  berth releases:rollback catmeow "$target" >/dev/null
  until [ "$(page)" = "$body" ]; do sleep 0.01; done
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
done | stats | sed 's/^/| releases:rollback until served (no build) | /; s/$/ |/'
berth config:unset catmeow MESSAGE >/dev/null

python3 - "$RUNS" "$domain" <<'PY' | stats | sed 's/^/| request to its line in `logs -t` | /; s/$/ |/'
import subprocess, sys, time, urllib.request
runs, domain = int(sys.argv[1]), sys.argv[2]
follow = subprocess.Popen(["berth", "logs", "catmeow", "-t", "-n", "0"], stdout=subprocess.PIPE, text=True)
time.sleep(0.5)
for _ in range(runs):
    t0 = time.time()
    urllib.request.urlopen(urllib.request.Request("http://127.0.0.1/", headers={"Host": f"catmeow.{domain}"})).read()
    while '"GET / HTTP' not in follow.stdout.readline():
        pass
    print(f"{time.time() - t0:.3f}")
    time.sleep(0.3)
follow.kill()
PY
