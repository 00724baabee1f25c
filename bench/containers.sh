#!/usr/bin/env bash
# Container start latency, berth vs crun vs runc on the same rootfs, and the
# shim's memory per running container. Prints markdown rows.
#   first instruction: from the start command to `date +%s%N` running inside
#   first HTTP 200:   from the start command to curl's first 200 from a tiny
#                      python3 http.server in the container (host network)
# Usage: bench/containers.sh [RUNS]      (root; berth installed; default 20 runs)
set -euo pipefail
RUNS=${1:-20}
here=$(cd "$(dirname "$0")/.." && pwd)
BERTH=${BERTH:-/usr/local/bin/berth}
for tool in crun runc curl; do
  command -v "$tool" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null
done
work=$(mktemp -d /var/tmp/berth-bench-ct.XXXXXX)
export BERTH_ROOT=$work/root
cleanup() {
  for id in $(ls "$BERTH_ROOT/containers" 2>/dev/null); do "$BERTH" containers:rm "$id" --force >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$BERTH_ROOT"
printf '[network]\nbridge = "bb-bench"\nsubnet = "10.214.0.0/24"\n' > "$BERTH_ROOT/config.toml"
BERTH_STACKS=$here/stacks "$BERTH" stacks:build bookworm --cache /var/cache/berth/stacks >/dev/null
rootfs=$("$BERTH" images:unpack berth/stack-run:bookworm | tail -n 1)

# One bundle per OCI runtime: their own default spec, our rootfs (read only),
# the same process as berth runs.
make_bundle() { # runtime dir args-json
  mkdir -p "$2"
  (cd "$2" && "$1" spec)
  python3 - "$2/config.json" "$rootfs" "$3" <<'PY'
import json, sys
path, rootfs, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
c = json.load(open(path))
c["root"] = {"path": rootfs, "readonly": True}
c["process"]["terminal"] = False
c["process"]["args"] = args
c["process"]["user"] = {"uid": 1000, "gid": 1000}
c["process"]["cwd"] = "/"
if "host" in sys.argv[3:] or "http.server" in " ".join(args):
    c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
json.dump(c, open(path, "w"))
PY
}
# Debian's crun refuses this hybrid host's cgroup v2 mount at /sys/fs/cgroup/unified;
# it runs in a private mount namespace where that mount is hidden.
crun_run() { unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec crun "$@"' crun "$@"; }

stats() { python3 -c '
import statistics, sys
v = sorted(float(x) for x in sys.stdin.read().split())
print(f"median {statistics.median(v):.1f} ms, min {v[0]:.1f}, max {v[-1]:.1f} (n={len(v)})")'; }

now() { date +%s%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", (b - a) / 1e6 }'; }

# One start of `date` in the container: prints the ms to its first instruction.
first_instruction_once() {
  local runtime=$1 i=$2 t0 t1
  case $runtime in
    berth)
      t0=$(now)
      "$BERTH" containers:run berth/stack-run:bookworm --id "fi-$i" --network none --restart no -- date +%s%N >/dev/null
      until grep -q 'stdout: [0-9]' "$BERTH_ROOT/containers/fi-$i/container.log" 2>/dev/null; do sleep 0.01; done
      t1=$(grep -o 'stdout: [0-9]*' "$BERTH_ROOT/containers/fi-$i/container.log" | head -1 | cut -d' ' -f2)
      "$BERTH" containers:rm "fi-$i" --force >/dev/null ;;
    crun) t0=$(now); t1=$(crun_run run -b "$work/crun-date" "fi-crun-$i"); crun_run delete -f "fi-crun-$i" >/dev/null 2>&1 || true ;;
    runc) t0=$(now); t1=$(runc run -b "$work/runc-date" "fi-runc-$i"); runc delete -f "fi-runc-$i" >/dev/null 2>&1 || true ;;
  esac
  ms "$t0" "$t1"
}

# The runtimes take turns (berth, crun, runc, berth, ...), so a slow
# moment of the machine falls on all three alike.
first_instruction() {
  local i runtime
  for i in $(seq "$RUNS"); do
    for runtime in berth crun runc; do
      first_instruction_once "$runtime" "$i" >> "$work/fi-$runtime"
      sleep 0.05
    done
  done
  for runtime in berth crun runc; do
    echo "| start to first instruction, $runtime | $(stats < "$work/fi-$runtime") |"
  done
}

first_200() {
  local runtime=$1 i t0 t1 port
  for i in $(seq "$RUNS"); do
    port=18080
    case $runtime in
      berth) t0=$(now); "$BERTH" containers:run berth/stack-run:bookworm --id "h-$i" --network host --restart no -- python3 -m http.server "$port" --bind 127.0.0.1 >/dev/null ;;
      crun) t0=$(now); crun_run run -d -b "$work/crun-http" "h-crun-$i" >/dev/null 2>&1 </dev/null ;;
      runc) t0=$(now); runc run -d -b "$work/runc-http" "h-runc-$i" >/dev/null 2>&1 </dev/null ;;
    esac
    until curl -s -o /dev/null -f "http://127.0.0.1:$port/"; do sleep 0.005; done
    t1=$(now)
    case $runtime in
      berth) "$BERTH" containers:rm "h-$i" --force >/dev/null ;;
      crun) crun_run kill "h-crun-$i" KILL >/dev/null 2>&1 || true; sleep 0.2; crun_run delete -f "h-crun-$i" >/dev/null 2>&1 || true ;;
      runc) runc kill "h-runc-$i" KILL >/dev/null 2>&1 || true; sleep 0.2; runc delete -f "h-runc-$i" >/dev/null 2>&1 || true ;;
    esac
    while curl -s -o /dev/null "http://127.0.0.1:$port/"; do sleep 0.05; done
    ms "$t0" "$t1"
  done | stats
}

make_bundle crun "$work/crun-date" '["date", "+%s%N"]'
make_bundle runc "$work/runc-date" '["date", "+%s%N"]'
make_bundle crun "$work/crun-http" '["python3", "-m", "http.server", "18080", "--bind", "127.0.0.1"]'
make_bundle runc "$work/runc-http" '["python3", "-m", "http.server", "18080", "--bind", "127.0.0.1"]'

first_instruction
for runtime in berth crun runc; do
  echo "| start to first HTTP 200, $runtime | $(first_200 $runtime) |"
done

# The shim's memory: 5 running containers, resident and proportional sizes.
for i in 1 2 3 4 5; do "$BERTH" containers:run berth/stack-run:bookworm --id "mem-$i" --network none -- sleep 300 >/dev/null; done
sleep 1
python3 - "$BERTH_ROOT" <<'PY'
import json, sys, os
root = sys.argv[1]
rss, pss = [], []
for i in range(1, 6):
    pid = json.load(open(f"{root}/containers/mem-{i}/state.json"))["shim_pid"]
    status = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status"))
    rss.append(int(status["VmRSS"].split()[0]))
    roll = dict(l.split(":", 1) for l in open(f"/proc/{pid}/smaps_rollup").read().splitlines()[1:])
    pss.append(int(roll["Pss"].split()[0]))
print(f"| shim memory per running container (5 shims) | RSS {sum(rss)/len(rss)/1024:.2f} MiB, PSS {sum(pss)/len(pss)/1024:.2f} MiB |")
PY
