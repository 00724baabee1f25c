# The backing-service plugin's verbs, for every kind. Sourced by each
# subcommands/VERB and trigger; the kind is the name the plugin was
# installed under ($PLUGIN_NAME: postgres, redis), whose specifics live in
# kinds/KIND/kind.sh. Everything here goes through berth's public commands;
# the plugin's own state is $BERTH_ROOT/services/KIND/NAME:
#   env     SERVICE_PASSWORD and SERVICE_DB, 0600: the container's --env-file
#   links   one "APP ALIAS" line per linked app
#   data/   the service's data, owned by the image's service user
set -euo pipefail
umask 077

KIND=$PLUGIN_NAME
KIND_DIR=$PLUGIN_DIR/kinds/$KIND
# The uid the service images run as (their recipes' [user]): no host account has it.
SERVICE_UID=1899999

# One line on stderr, as berth's own commands say it.
die() { echo "berth: $*" >&2; exit 1; }
usage() { echo "berth: usage: berth $KIND:$1" >&2; exit 2; }
say() { echo "-----> $*"; }

[ -f "$KIND_DIR/kind.sh" ] || die "plugin $PLUGIN_NAME is not a kind of service this plugin knows (postgres, redis)"
# shellcheck source=/dev/null
. "$KIND_DIR/kind.sh"

services_dir() { echo "$BERTH_ROOT/services/$KIND"; }
service_root() { echo "$(services_dir)/$1"; }
container_of() { echo "service.$KIND.$1"; }
image() { echo "berth/service:$KIND"; }

# Service names as Dokku takes them, minus what a path or URL would mind.
check_name() {
  [[ ${1:-} =~ ^[a-z0-9][a-z0-9-]{0,47}$ ]] || die "that service name is not valid: use a-z, 0-9 and -, at most 48, starting with a letter or digit"
}

# An app berth knows (its name checked by berth, so safe to show from here on).
check_app() {
  berth apps:exists "$1" >/dev/null 2>&1 || die "that app does not exist"
}

existing() {
  check_name "${1:-}"
  [ -f "$(service_root "$1")/env" ] || die "$KIND service $1 does not exist"
}

env_value() { sed -n "s/^$2=//p" "$(service_root "$1")/env"; }
address() { berth containers:inspect "$(container_of "$1")" | awk '$1 == "address:" { print $2 }'; }
status() { berth containers:inspect "$(container_of "$1")" | awk '$1 == "status:" { print $2 }'; }
url() { kind_url "$(env_value "$1" SERVICE_PASSWORD)" "$(address "$1")" "$(env_value "$1" SERVICE_DB)"; }
links() { cat "$(service_root "$1")/links" 2>/dev/null || true; }
linked_apps() { links "$1" | awk '{ print $1 }'; }

# The image, built from the kind's recipe like a stack (once; then cached
# by the recipe's hash, and carried by bundles).
ensure_image() (
  umask 022
  berth stacks:build "$KIND" --recipe "$KIND_DIR" --cache /var/cache/berth/stacks | sed "s/^-----> //"
)

# The container: on the bridge, isolated (only linked apps reach it),
# restarted by its monitor and by ps:restore at boot, data on the host.
run_container() {
  local name=$1 root
  root=$(service_root "$name")
  berth containers:run "$(image)" --id "$(container_of "$name")" --name "$KIND-$name" \
    --network bridge --restart always --isolated --stop-timeout 30 \
    --label "io.berth.service=$KIND/$name" \
    --env-file "$root/env" --volume "$root/data:/data" --volume "$KIND_DIR:/berth-service:ro" \
    -- /bin/bash /berth-service/start.sh >/dev/null
}

# Waits up to a minute for the service to answer.
wait_ready() {
  local name=$1 tries=0
  until kind_ready "$(container_of "$name")" >/dev/null 2>&1; do
    tries=$((tries + 1))
    [ "$tries" -lt 300 ] || return 1
    sleep 0.2
  done
}

started() {
  wait_ready "$1" || die "$KIND service $1 did not become ready; see berth $KIND:logs $1"
}

service_create() {
  [ $# -ge 1 ] || usage "create NAME [--image-version VERSION]"
  local name=$1 version=$KIND_VERSION
  shift
  while [ $# -gt 0 ]; do
    case $1 in
      --image-version) [ $# -ge 2 ] || usage "create NAME [--image-version VERSION]"; version=$2; shift 2 ;;
      *) usage "create NAME [--image-version VERSION]" ;;
    esac
  done
  check_name "$name"
  [ "$version" = "$KIND_VERSION" ] || die "$KIND $version is not available: this host's image offers $KIND_VERSION"
  local root
  root=$(service_root "$name")
  [ ! -e "$root" ] || die "$KIND service $name already exists"
  ensure_image >/dev/null
  mkdir -p "$(services_dir)"
  # Made aside and moved in whole: a failed create leaves nothing behind.
  local tmp
  tmp=$(mktemp -d "$(services_dir)/.new-$name.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  install -d -m 0700 -o "$SERVICE_UID" -g "$SERVICE_UID" "$tmp/data"
  printf 'SERVICE_PASSWORD=%s\nSERVICE_DB=%s\n' "$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')" "${name//-/_}" > "$tmp/env"
  : > "$tmp/links"
  mv "$tmp" "$root"
  trap - EXIT
  if ! run_container "$name" || ! wait_ready "$name"; then
    berth containers:rm --force "$(container_of "$name")" >/dev/null 2>&1 || true
    rm -rf "$root"
    die "$KIND service $name did not start"
  fi
  say "$KIND container created: $name"
  echo "       $(kind_display_url "$(address "$name")" "$(env_value "$name" SERVICE_DB)")"
}

service_exists() {
  [ $# -eq 1 ] || usage "exists NAME"
  check_name "$1"
  if [ -f "$(service_root "$1")/env" ]; then echo "$KIND service $1 exists"; else die "$KIND service $1 does not exist"; fi
}

service_list() {
  [ $# -eq 0 ] || usage "list"
  printf '%-24s %-8s %-10s %s\n' NAME VERSION STATUS LINKS
  local dir name
  for dir in "$(services_dir)"/*/; do
    [ -f "$dir/env" ] || continue
    name=$(basename "$dir")
    printf '%-24s %-8s %-10s %s\n' "$name" "$KIND_VERSION" "$(status "$name")" "$(linked_apps "$name" | paste -sd ' ')"
  done
}

service_info() {
  [ $# -ge 1 ] || usage "info NAME [--format json] [--FIELD]"
  local name=$1 want=${2:-}
  existing "$name"
  local -A field=(
    [id]=$(container_of "$name") [status]=$(status "$name") [internal-ip]=$(address "$name")
    [dsn]=$(url "$name") [links]=$(linked_apps "$name" | paste -sd ' ') [version]="$KIND:$KIND_VERSION"
    [service-root]=$(service_root "$name") [data-dir]=$(service_root "$name")/data [exposed-ports]=-
  )
  local order=(config-dir data-dir dsn exposed-ports id internal-ip links service-root status version)
  field[config-dir]=${field[data-dir]}
  case $want in
    "") echo "=====> $name $KIND service information"
        local key label
        for key in "${order[@]}"; do
          label=${key//-/ }
          printf '       %-20s %s\n' "${label^}:" "${field[$key]}"
        done ;;
    --format)
        [ "${3:-}" = json ] || usage "info NAME [--format json] [--FIELD]"
        local sep="{"
        for key in "${order[@]}"; do printf '%s"%s":"%s"' "$sep" "$key" "${field[$key]}"; sep=","; done
        echo "}" ;;
    --*) [ -n "${field[${want#--}]+set}" ] || die "$KIND:info has no such field; fields: ${order[*]}"
         echo "${field[${want#--}]}" ;;
    *) usage "info NAME [--format json] [--FIELD]" ;;
  esac
}

# Restarts APP with the links it has now, when it runs (zero downtime for web).
restart_app() {
  if [ "$(berth ps:report "$1" --running)" = true ]; then
    berth ps:restart "$1"
  fi
}

lock_service() {
  exec 9>"$(service_root "$1")/.lock"
  flock 9
}

service_link() {
  local usage_line="link NAME APP [--alias ALIAS]"
  [ $# -eq 2 ] || [ $# -eq 4 ] || usage "$usage_line"
  local name=$1 app=$2 alias=$KIND_DEFAULT_ALIAS
  if [ $# -eq 4 ]; then
    [ "$3" = --alias ] || usage "$usage_line"
    alias=$4
  fi
  existing "$name"
  [[ $alias =~ ^[A-Z][A-Z0-9_]{0,40}$ ]] || die "that alias is not valid: use A-Z, 0-9 and _, starting with a letter"
  alias=${alias%_URL}
  check_app "$app"
  lock_service "$name"
  if linked_apps "$name" | grep -qxF "$app"; then
    die "$KIND service $name is already linked to $app"
  fi
  berth containers:allow "$(container_of "$name")" "$app" >/dev/null
  echo "$app $alias" >> "$(service_root "$name")/links"
  say "Linked $KIND service $name to $app as ${alias}_URL"
  restart_app "$app"
}

service_unlink() {
  [ $# -eq 2 ] || usage "unlink NAME APP"
  local name=$1 app=$2
  existing "$name"
  lock_service "$name"
  check_app "$app"
  linked_apps "$name" | grep -qxF "$app" || die "$KIND service $name is not linked to $app"
  local links_file
  links_file=$(service_root "$name")/links
  awk -v app="$app" '$1 != app' "$links_file" > "$links_file.new"
  mv "$links_file.new" "$links_file"
  berth containers:deny "$(container_of "$name")" "$app" >/dev/null
  say "Unlinked $KIND service $name from $app"
  restart_app "$app"
}

service_linked() {
  [ $# -eq 2 ] || usage "linked NAME APP"
  existing "$1"
  check_app "$2"
  if linked_apps "$1" | grep -qxF "$2"; then echo "$KIND service $1 is linked to $2"; else die "$KIND service $1 is not linked to $2"; fi
}

service_app_links() {
  [ $# -eq 1 ] || usage "app-links APP"
  local dir
  for dir in "$(services_dir)"/*/; do
    [ -f "$dir/env" ] || continue
    if awk '{ print $1 }' "$dir/links" | grep -qxF "$1"; then basename "$dir"; fi
  done
}

service_connect() {
  [ $# -eq 1 ] || usage "connect NAME"
  existing "$1"
  kind_connect "$(container_of "$1")" "$(env_value "$1" SERVICE_DB)"
}

service_export() {
  [ $# -eq 1 ] || usage "export NAME > FILE"
  existing "$1"
  [ ! -t 1 ] || die "the dump is binary: send it to a file (berth $KIND:export $1 > FILE)"
  kind_export "$(container_of "$1")" "$(env_value "$1" SERVICE_DB)"
}

service_import() {
  [ $# -eq 1 ] || usage "import NAME < FILE"
  existing "$1"
  [ ! -t 0 ] || die "give the dump on stdin (berth $KIND:import $1 < FILE)"
  kind_import "$(container_of "$1")" "$(env_value "$1" SERVICE_DB)"
  say "Imported into $KIND service $1"
}

service_logs() {
  [ $# -ge 1 ] && [ $# -le 2 ] || usage "logs NAME [-t|--tail]"
  existing "$1"
  case ${2:-} in
    "") berth containers:logs "$(container_of "$1")" ;;
    -t|--tail) berth containers:logs "$(container_of "$1")" --follow ;;
    *) usage "logs NAME [-t|--tail]" ;;
  esac
}

service_start() {
  [ $# -eq 1 ] || usage "start NAME"
  existing "$1"
  if [ "$(status "$1")" = running ]; then say "$KIND service $1 is already running"; return; fi
  berth containers:start "$(container_of "$1")" >/dev/null
  started "$1"
  say "Started $KIND service $1"
}

service_stop() {
  [ $# -eq 1 ] || usage "stop NAME"
  existing "$1"
  berth containers:stop "$(container_of "$1")" >/dev/null
  say "Stopped $KIND service $1"
}

service_restart() {
  [ $# -eq 1 ] || usage "restart NAME"
  existing "$1"
  if [ "$(status "$1")" = running ]; then berth containers:stop "$(container_of "$1")" >/dev/null; fi
  berth containers:start "$(container_of "$1")" >/dev/null
  started "$1"
  say "Restarted $KIND service $1"
}

service_destroy() {
  [ $# -ge 1 ] && [ $# -le 2 ] || usage "destroy NAME [-f|--force]"
  local name=$1 force=${2:-}
  existing "$name"
  case $force in ""|-f|--force) ;; *) usage "destroy NAME [-f|--force]" ;; esac
  local apps
  apps=$(linked_apps "$name" | paste -sd ' ')
  [ -z "$apps" ] || die "cannot destroy $KIND service $name: it is linked to $apps (unlink first)"
  if [ -z "$force" ]; then
    [ -t 0 ] || die "destroying $KIND service $name deletes its data: confirm with --force"
    local answer
    read -r -p " !     Type the service name to destroy it and its data: " answer
    [ "$answer" = "$name" ] || die "confirmation did not match $name; nothing was destroyed"
  fi
  berth containers:rm --force "$(container_of "$name")" >/dev/null 2>&1 || true
  rm -rf "$(service_root "$name")"
  say "Deleted $KIND service $name"
}

# Triggers.

# deploy-env APP: each linked service's URL, under its alias.
trigger_deploy_env() {
  local app=$1 dir name alias
  for dir in "$(services_dir)"/*/; do
    [ -f "$dir/env" ] || continue
    name=$(basename "$dir")
    while read -r linked alias; do
      [ "$linked" = "$app" ] && echo "${alias}_URL=$(url "$name")"
    done < "$dir/links"
  done
  return 0
}

# post-delete APP: the app is gone, so are its links.
trigger_post_delete() {
  local app=$1 dir name
  for dir in "$(services_dir)"/*/; do
    [ -f "$dir/env" ] || continue
    name=$(basename "$dir")
    if awk '{ print $1 }' "$dir/links" | grep -qxF "$app"; then
      awk -v app="$app" '$1 != app' "$dir/links" > "$dir/links.new" && mv "$dir/links.new" "$dir/links"
      berth containers:deny "$(container_of "$name")" "$app" >/dev/null
    fi
  done
}

# post-app-rename OLD NEW: the links follow the app.
trigger_post_app_rename() {
  local old=$1 new=$2 dir name
  for dir in "$(services_dir)"/*/; do
    [ -f "$dir/env" ] || continue
    name=$(basename "$dir")
    if awk '{ print $1 }' "$dir/links" | grep -qxF "$old"; then
      awk -v old="$old" -v new="$new" '$1 == old { $1 = new } { print }' "$dir/links" > "$dir/links.new" && mv "$dir/links.new" "$dir/links"
      berth containers:deny "$(container_of "$name")" "$old" >/dev/null
      berth containers:allow "$(container_of "$name")" "$new" >/dev/null
    fi
  done
}

# provision-addons APP vN PLAN ALIAS...: app.json addons this kind serves,
# created (named after the app) and linked on the app's first deploy.
trigger_provision_addons() {
  local app=$1 plan alias name
  shift 2
  while [ $# -ge 2 ]; do
    plan=${1%%:*} alias=$2
    shift 2
    [[ " $KIND_PLANS " == *" $plan "* ]] || continue
    [ "$alias" != - ] || alias=$KIND_DEFAULT_ALIAS
    name=$app
    [ "$alias" = "$KIND_DEFAULT_ALIAS" ] || name=$app-$(tr 'A-Z_' 'a-z-' <<< "$alias")
    name=${name:0:48}
    if [ ! -f "$(service_root "$name")/env" ]; then service_create "$name"; fi
    if ! linked_apps "$name" | grep -qxF "$app"; then service_link "$name" "$app" --alias "$alias"; fi
  done
}
