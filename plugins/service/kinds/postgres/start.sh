#!/bin/bash
# PID 1 of a postgres service container: makes the cluster on first start
# (password from the environment, never argv), then runs the server and
# turns the stop signal into PostgreSQL's fast shutdown, so open
# connections do not hold a stop until it is killed.
set -euo pipefail
bin=/usr/lib/postgresql/15/bin
data=/data/pgdata
if [ ! -s "$data/PG_VERSION" ]; then
  rm -rf "$data.init"
  pwfile=$(mktemp)
  printf '%s\n' "$SERVICE_PASSWORD" > "$pwfile"
  "$bin/initdb" -D "$data.init" -U postgres --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  printf "listen_addresses = '*'\nunix_socket_directories = '/tmp'\njit = off\n" >> "$data.init/postgresql.conf"
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$data.init/pg_hba.conf"
  echo "CREATE DATABASE \"$SERVICE_DB\";" | "$bin/postgres" --single -D "$data.init" postgres >/dev/null
  mv "$data.init" "$data"
fi
"$bin/postgres" -D "$data" &
pid=$!
trap 'kill -INT "$pid"' TERM INT
set +e
while :; do
  wait "$pid"
  code=$?
  kill -0 "$pid" 2>/dev/null || break
done
exit "$code"
