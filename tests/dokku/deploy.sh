#!/usr/bin/env bash
# A deploy script as Dokku users write them, run unchanged with `dokku`
# meaning berth: create, global and app settings, named storage, push,
# scale, read single report fields, destroy. DOKKU_HOST (user@host) and
# HTTP_PORT come from the caller, as they would from a CI job's settings.
set -euo pipefail
APP=catmeow

dokku events:on
dokku apps:create "$APP"
dokku config:set --global GLOBAL_GREETING=hello
dokku config:set --no-restart "$APP" SECRET_WORD=meow
dokku ps:set --global restart-policy on-failure:5
dokku ps:set "$APP" stop-timeout-seconds 5
dokku checks:set --global wait-to-retire 5
dokku nginx:set "$APP" client-max-body-size 20m
dokku git:set "$APP" deploy-branch main
dokku git:set "$APP" rev-env-var DOKKU_GIT_REV
dokku git:set "$APP" keep-git-dir true
dokku cron:set --global maintenance false
dokku buildpacks:set-property --global stack bookworm
dokku apps:set --global disable-autocreation true
dokku builds:set --global retention 10
dokku letsencrypt:set --global email ops@example.com
dokku storage:create "$APP-data"
dokku storage:mount "$APP" "$APP-data" --container-dir /app/storage

git remote add dokku "$DOKKU_HOST:$APP"
git push dokku main
# With autocreation off, a push to an app nobody created is refused.
if git push "$DOKKU_HOST:$APP-typo" main 2>/dev/null; then
  echo "a push created $APP-typo" >&2
  exit 1
fi
dokku apps:set --global disable-autocreation

dokku ps:scale "$APP" web=2

test "$(dokku ps:report "$APP" --deployed)" = "true"
test "$(dokku ps:report "$APP" --processes)" = "2"
test "$(dokku ps:report "$APP" --ps-computed-restart-policy)" = "on-failure:5"
test "$(dokku ps:report "$APP" --ps-stop-timeout-seconds)" = "5"
test "$(dokku checks:report "$APP" --checks-computed-wait-to-retire)" = "5"
test "$(dokku nginx:report "$APP" --nginx-client-max-body-size)" = "20m"
test "$(dokku git:report "$APP" --git-deploy-branch)" = "main"
test "$(dokku --quiet run "$APP" printenv DOKKU_GIT_REV)" = "$(git rev-parse HEAD)"
dokku --quiet run "$APP" test -d /app/.git
test "$(dokku buildpacks:report "$APP" --buildpacks-computed-stack)" = "bookworm"
test "$(dokku cron:report "$APP" --cron-computed-maintenance)" = "false"
dokku checks:run "$APP" web
dokku resource:limit --memory 256m --process-type web "$APP"
test "$(dokku resource:report "$APP" --resource-web.limit.memory)" = "256m"
test "$(dokku proxy:report "$APP" --proxy-computed-type)" = "nginx"
test "$(dokku proxy:report "$APP" --proxy-enabled)" = "true"
dokku git:status "$APP" | grep -q "is built from it"
test "$(dokku config:get "$APP" SECRET_WORD)" = "meow"
test "$(dokku config:get --global GLOBAL_GREETING)" = "hello"
test "$(dokku --quiet run "$APP" printenv GLOBAL_GREETING)" = "hello"
dokku --quiet apps:list | grep -qx "$APP"
dokku events | grep -q "INVOKED: post-deploy( $APP v"
test "$(dokku builds:report "$APP" --build-status)" = "succeeded"
test "$(dokku builds:report "$APP" --builds-computed-retention)" = "10"
test "$(dokku letsencrypt:report "$APP" --letsencrypt-computed-email)" = "ops@example.com"
test "$(dokku storage:report "$APP" --storage-attachment.1.entry-name)" = "$APP-data"
dokku --quiet run "$APP" sh -c 'echo kept > /app/storage/note'
test "$(dokku --quiet run "$APP" cat /app/storage/note)" = "kept"
test "$(curl -fsS -H "Host: $APP.berth.test" "http://127.0.0.1:$HTTP_PORT/")" = "Cat dreams meow.."

# Without vhosts the app answers on a port of its own, to any host name.
dokku domains:disable "$APP"
test "$(dokku domains:report "$APP" --domains-app-enabled)" = "false"
PORT_OWN="$(dokku ports:report "$APP" --ports-map-detected | sed -n 's/^http:\([0-9]*\):.*/\1/p')"
test "$(curl -fsS -H "Host: anything.example" "http://127.0.0.1:$PORT_OWN/")" = "Cat dreams meow.."
dokku domains:enable "$APP"
test "$(curl -fsS -H "Host: $APP.berth.test" "http://127.0.0.1:$HTTP_PORT/")" = "Cat dreams meow.."

dokku apps:clone "$APP" "$APP-staging"
test "$(dokku config:get "$APP-staging" SECRET_WORD)" = "meow"
test "$(curl -fsS -H "Host: $APP-staging.berth.test" "http://127.0.0.1:$HTTP_PORT/")" = "Cat dreams meow.."
dokku apps:destroy "$APP-staging" --force

# An app fetched from a repository rather than pushed: git:sync --build.
dokku apps:create "$APP-synced"
dokku git:sync --build "$APP-synced" "file://$PWD" main
test "$(dokku git:report "$APP-synced" --git-deploy-branch)" = "main"
test "$(curl -fsS -H "Host: $APP-synced.berth.test" "http://127.0.0.1:$HTTP_PORT/")" = "Cat dreams meow.."
dokku git:sync --build-if-changes "$APP-synced" "file://$PWD" main | grep -q "(unchanged)"
dokku apps:destroy "$APP-synced" --force

dokku apps:destroy "$APP" --force
if dokku apps:exists "$APP"; then
  echo "$APP still exists" >&2
  exit 1
fi
dokku storage:destroy "$APP-data" --force
echo "deploy script: ok"
