# Shared by bench/push.sh and bench/cold.sh: the installed host's ssh
# key and domain, a scratch dir, and pushing until nginx serves a body.
BERTH_ROOT=${BERTH_ROOT:-/var/lib/berth}
key=$BERTH_ROOT/install_key
domain=$(berth domains:report-global | head -n 1)
export GIT_SSH_COMMAND="ssh -i $key -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=$BERTH_ROOT/known_hosts -o LogLevel=ERROR"
work=$(mktemp -d /var/tmp/berth-bench-push.XXXXXX)
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

