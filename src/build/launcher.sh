#!/bin/bash
# berth's process launcher: pid 1 of every app container. Sources
# /app/.profile.d/*.sh as Heroku does, runs the process type's command with
# bash -c, forwards SIGTERM and SIGINT to it, and exits with its status.
#   launcher PROCESS_TYPE
type=${1:-web}
cmd=$(awk -F'\t' -v t="$type" '$1 == t { sub(/^[^\t]*\t/, ""); print; exit }' /app/.berth/processes)
if [ -z "$cmd" ]; then
  echo "berth: this app has no process type $type" >&2
  exit 127
fi
export HOME=/app PORT=${PORT:-5000}
cd /app || exit 1
for f in /app/.profile.d/*.sh; do
  # shellcheck disable=SC1090
  [ -f "$f" ] && . "$f"
done
bash -c "$cmd" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
while true; do
  wait "$child"
  status=$?
  kill -0 "$child" 2>/dev/null || exit "$status"
done
