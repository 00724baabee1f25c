#!/bin/bash
# PID 1 of a redis service container: the password goes into a config file
# in the container's /tmp (never argv); a dump left by an import replaces
# the data before the server starts.
set -euo pipefail
if [ -f /data/dump.rdb.new ]; then mv /data/dump.rdb.new /data/dump.rdb; fi
conf=/tmp/redis.conf
cat > "$conf" <<CONF
bind 0.0.0.0
port 6379
protected-mode no
unixsocket /tmp/redis.sock
unixsocketperm 700
dir /data
dbfilename dump.rdb
save 3600 1 300 100 60 10000
CONF
printf 'requirepass %s\n' "$SERVICE_PASSWORD" >> "$conf"
exec redis-server "$conf"
