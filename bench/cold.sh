#!/usr/bin/env bash
# Cold push-to-live of examples/catmeow (a new app each run) with this
# berth beside a previous one, in the same run, on this host (after
# ./install.sh: nginx on :80, sshd on :22). Rows:
#   previous berth: a new app, its own empty cache (pip installs Flask);
#   this berth, dependencies the host has seen: another app built the same
#     requirements before, so the shared install and layer are used;
#   this berth, new dependencies: requirements no app had (a line that
#     changes the file), so the shared install runs first.
# The installed binary and built-in buildpacks are swapped for the
# previous ones for their runs and put back at the end. Build the previous
# berth with, for example:
#   git worktree add /tmp/prev 0c81e53 && (cd /tmp/prev && cargo build --release)
# Usage: bench/cold.sh PREVIOUS_CHECKOUT [RUNS]   (root; default 5 runs)
#   PREVIOUS_CHECKOUT has target/release/berth and buildpacks/;
#   PREVIOUS_BERTH=FILE names the binary elsewhere.
set -euo pipefail
previous=${PREVIOUS_BERTH:-$1/target/release/berth}
previous_buildpacks=$1/buildpacks
RUNS=${2:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/push-lib.sh"
installed=$(command -v berth)
keep=$(mktemp /var/tmp/berth-bench-current.XXXXXX)
cp -a "$installed" "$keep"
packs=/usr/local/share/berth/buildpacks
keep_packs=$(mktemp -d /var/tmp/berth-bench-buildpacks.XXXXXX)
cp -a "$packs/." "$keep_packs"
use_buildpacks() { rm -rf "$packs"; mkdir -p "$packs"; cp -a "$1/." "$packs"; }
trap 'install -m 0755 "$keep" "$installed"; use_buildpacks "$keep_packs"; rm -rf "$keep" "$keep_packs" "$work"' EXIT

cold() { # label berth-binary requirements-line
  install -m 0755 "$2" "$installed"
  for i in $(seq "$RUNS"); do
    app="benchcold$i-$$-$RANDOM"
    checkout "$work/$app"
    if [ -n "$3" ]; then
      echo "# $3 $app" >> "$work/$app/requirements.txt"
      (cd "$work/$app" && git -c user.name=b -c user.email=b@b commit -q -am "new requirements")
    fi
    push_until "$work/$app" "$app" "Cat dreams meow.."
    berth apps:destroy "$app" --force >/dev/null 2>&1 || true
  done | stats | sed "s/^/| $1 | /; s/\$/ |/"
}

# This berth sees catmeow's requirements once, as a host that ran it would.
install -m 0755 "$keep" "$installed"
checkout "$work/seen"
push_until "$work/seen" "benchseen-$$" "Cat dreams meow.." >/dev/null
berth apps:destroy "benchseen-$$" --force >/dev/null 2>&1 || true

use_buildpacks "$previous_buildpacks"
cold "previous berth, cold (new app, its own empty cache)" "$previous" ""
use_buildpacks "$keep_packs"
cold "this berth, cold, dependencies the host has seen" "$keep" ""
cold "this berth, cold, new dependencies" "$keep" "new"
