# Redis: Debian's redis-server 7, snapshots in /data.
KIND_VERSION=7
KIND_PORT=6379
KIND_DEFAULT_ALIAS=REDIS
KIND_PLANS="heroku-redis dokku-redis redis rediscloud"

kind_url() { echo "redis://:$1@$2:$KIND_PORT"; }
kind_display_url() { echo "DSN: redis://:********@$1:$KIND_PORT"; }
# redis-cli takes the password from REDISCLI_AUTH, set inside the container
# from its own environment: never in an argv the host can see.
cli() { berth containers:exec "$1" /bin/bash -c 'REDISCLI_AUTH=$SERVICE_PASSWORD exec redis-cli --no-auth-warning -s /tmp/redis.sock "$@"' redis-cli "${@:2}"; }
kind_ready() { [ "$(cli "$1" PING)" = PONG ]; }
kind_connect() { cli "$1"; }
kind_export() { cli "$1" SAVE >/dev/null && berth containers:exec "$1" cat /data/dump.rdb; }
# The dump goes beside the data; the server is shut down without saving and
# its monitor starts it again, and start.sh puts the dump in place first.
kind_import() {
  berth containers:exec "$1" /bin/bash -c 'cat > /data/dump.rdb.new'
  cli "$1" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
  local tries=0
  until kind_ready "$1" >/dev/null 2>&1; do
    tries=$((tries + 1)); [ "$tries" -lt 300 ] || die "redis did not come back after the import"; sleep 0.2
  done
}
