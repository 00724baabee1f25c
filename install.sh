#!/usr/bin/env bash
# Turns a fresh Debian bookworm machine into a berth host. Run as root.
# Idempotent: a second run changes nothing and succeeds.
set -euo pipefail

BERTH_ROOT=${BERTH_ROOT:-/var/lib/berth}
BIN=/usr/local/bin/berth
here=$(cd "$(dirname "$0")" && pwd)
# --offline: an air-gapped host. Packages come from offline/debs, crates
# from vendor/, the stack and the demo from offline/bundle.tar, all gathered
# by scripts/offline-kit.sh on a connected machine.
offline=false
case "${1:-}" in
  --offline) offline=true ;;
  "") ;;
  *) printf 'usage: %s [--offline]\n' "$0" >&2; exit 2 ;;
esac

say() { printf -- '-----> %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run me as root (sudo ./install.sh)"

# Debian packages berth uses at run time and to build itself (one list,
# shared with scripts/offline-kit.sh).
mapfile -t packages < <(sed 's/#.*//' "$here/packages.debian" | tr -s ' \t' '\n' | grep .)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] && $offline; then
  ls "$here"/offline/debs/*.deb >/dev/null 2>&1 || die "offline/debs/ holds no .deb: run scripts/offline-kit.sh on a connected machine first"
  say "Installing Debian packages from offline/debs: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive dpkg -i --skip-same-version "$here"/offline/debs/*.deb >/dev/null
elif [ ${#missing[@]} -gt 0 ]; then
  say "Installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Rust comes from rustup's toolchain on the machine (Debian's cargo is too old
# for this crate); look where sudo may have hidden it.
for dir in "$HOME/.cargo/bin" /root/.cargo/bin /usr/local/cargo/bin ${SUDO_USER:+"$(getent passwd "$SUDO_USER" | cut -d: -f6)/.cargo/bin"}; do
  [ -x "$dir/cargo" ] && PATH="$dir:$PATH"
done
command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs) and run me again"

if $offline; then
  [ -f "$here/.cargo/config.toml" ] && [ -d "$here/vendor" ] || die "vendor/ is missing: run scripts/offline-kit.sh on a connected machine first"
  say "Building berth (release) from vendor/"
  (cd "$here" && cargo build --release --locked --offline --quiet)
else
  say "Building berth (release)"
  (cd "$here" && cargo build --release --locked --quiet)
fi
if ! cmp -s "$here/target/release/berth" "$BIN"; then
  install -m 0755 "$here/target/release/berth" "$BIN"
  say "Installed $BIN"
fi

# Completions and the man page, written from the command tables.
put() { local tmp; tmp=$(mktemp); cat > "$tmp"; cmp -s "$tmp" "$1" || install -D -m 0644 "$tmp" "$1"; rm -f "$tmp"; }
"$BIN" help --completions bash | put /usr/share/bash-completion/completions/berth
"$BIN" help --completions zsh | put /usr/share/zsh/vendor-completions/_berth
"$BIN" help --man | put /usr/local/share/man/man1/berth.1

# Root's own: config vars, keys, logins and unpacked images live here.
install -d -m 0700 "$BERTH_ROOT"
chmod 0700 "$BERTH_ROOT"

# Stack recipes go where `berth stacks:build` looks for them.
for recipe in "$here"/stacks/*/recipe.toml; do
  name=$(basename "$(dirname "$recipe")")
  target=/usr/local/share/berth/stacks/$name/recipe.toml
  cmp -s "$recipe" "$target" || install -D -m 0644 "$recipe" "$target"
done

# Built-in buildpacks, where builds look for them.
if ! diff -rq "$here/buildpacks" /usr/local/share/berth/buildpacks >/dev/null 2>&1; then
  rm -rf /usr/local/share/berth/buildpacks
  mkdir -p /usr/local/share/berth
  cp -a "$here/buildpacks" /usr/local/share/berth/buildpacks
  say "Installed the built-in buildpacks"
fi

# The stacks (bookworm, the default, and trixie): built once with mmdebstrap
# (a few minutes each), then kept in the stack cache keyed by the recipe's
# hash; later runs find them up to date.
# Offline, it comes from the bundle (loaded below, once nginx runs).
if ! $offline; then
  for stack in bookworm trixie; do
    BERTH_ROOT=$BERTH_ROOT "$BIN" stacks:build "$stack" --cache /var/cache/berth/stacks
  done
fi
# --- Pushes arrive over OpenSSH as the unprivileged `berth` user, whose
# keys may only run `berth ssh-command`; that re-runs itself as root
# through exactly one sudo rule, which keeps SSH_ORIGINAL_COMMAND (the
# command line never goes into argv, where ps and sudo's log show it).
id berth >/dev/null 2>&1 || useradd --system --create-home --home-dir /home/berth --shell /bin/bash berth
install -d -o root -g root -m 0755 /home/berth/.ssh
[ -f /home/berth/.ssh/authorized_keys ] || install -o root -g root -m 0644 /dev/null /home/berth/.ssh/authorized_keys
sudoers=/etc/sudoers.d/berth
rule="Defaults:berth env_keep += \"SSH_ORIGINAL_COMMAND\"
berth ALL=(root) NOPASSWD: $BIN ssh-command --key *"
if [ "$(cat "$sudoers" 2>/dev/null)" != "$rule" ]; then
  printf '%s\n' "$rule" > "$sudoers.tmp"
  chmod 0440 "$sudoers.tmp"
  visudo -cqf "$sudoers.tmp"
  mv "$sudoers.tmp" "$sudoers"
fi

running() { pgrep -x "$1" >/dev/null; }
have_systemd() { [ -d /run/systemd/system ]; }

# sshd: Debian's, started if nothing serves it yet.
ssh-keygen -A >/dev/null
mkdir -p /run/sshd
if have_systemd; then
  systemctl enable --now ssh >/dev/null 2>&1 || true
elif ! running sshd; then
  /usr/sbin/sshd
fi

# nginx: Debian's, including berth's server blocks. Each app's own logs
# (nginx:access-logs) are rotated like Debian's nginx logs.
install -d -m 0755 "$BERTH_ROOT/nginx" "$BERTH_ROOT/logs/nginx"
if [ -d /etc/logrotate.d ]; then
  printf '%s\n' "$BERTH_ROOT/logs/nginx/*.log {" "  daily" "  rotate 14" "  missingok" "  notifempty" "  compress" \
    "  delaycompress" "  sharedscripts" "  postrotate" \
    "    [ -s /run/nginx.pid ] && kill -USR1 \"\$(cat /run/nginx.pid)\" || true" "  endscript" "}" > /etc/logrotate.d/berth-nginx
fi
conf=/etc/nginx/conf.d/berth.conf
want="server_names_hash_bucket_size 128;
include $BERTH_ROOT/nginx/*.conf;"
if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
  printf '%s\n' "$want" > "$conf"
fi
nginx -t -q
if have_systemd; then
  systemctl enable --now nginx >/dev/null 2>&1 || true
  systemctl reload nginx
elif nginx_pid=$(cat /run/nginx.pid 2>/dev/null) && [ "$(cat "/proc/$nginx_pid/comm" 2>/dev/null)" = nginx ]; then
  nginx -q -s reload
else
  nginx
fi

# --- Apps come back after a reboot: `berth ps:restore` at boot (a systemd
# unit where systemd runs, an init script otherwise), and now, for a host
# that rebooted since its last install.
if have_systemd; then
  unit=/etc/systemd/system/berth-restore.service
  want_unit="[Unit]
Description=berth: start the apps that should be running
After=network-online.target nginx.service
Wants=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
# The apps' monitors outlive this oneshot; stopping the unit leaves them.
KillMode=process
Environment=BERTH_ROOT=$BERTH_ROOT
ExecStart=$BIN ps:restore

[Install]
WantedBy=multi-user.target"
  if [ "$(cat "$unit" 2>/dev/null)" != "$want_unit" ]; then
    printf '%s\n' "$want_unit" > "$unit"
    systemctl daemon-reload
  fi
  systemctl enable berth-restore.service >/dev/null 2>&1
else
  script=/etc/init.d/berth
  want_script="#!/bin/sh
### BEGIN INIT INFO
# Provides:          berth
# Required-Start:    \$network \$remote_fs nginx
# Required-Stop:
# Default-Start:     2 3 4 5
# Default-Stop:
# Short-Description: start the berth apps that should be running
### END INIT INFO
# Written by berth's install.sh.
case \"\$1\" in
  start|restart|force-reload)
    BERTH_ROOT=$BERTH_ROOT start-stop-daemon --start --quiet --background --make-pidfile \\
      --pidfile /run/berth-cron.pid --exec $BIN -- cron:scheduler || true
    BERTH_ROOT=$BERTH_ROOT exec $BIN ps:restore ;;
  stop|status) exit 0 ;;
  *) echo \"usage: \$0 start\" >&2; exit 3 ;;
esac"
  if [ "$(cat "$script" 2>/dev/null)" != "$want_script" ]; then
    printf '%s\n' "$want_script" > "$script"
    chmod 0755 "$script"
  fi
  if command -v update-rc.d >/dev/null && [ ! -e /etc/rc2.d/S01berth ] && ! ls /etc/rc2.d/S*berth >/dev/null 2>&1; then
    update-rc.d berth defaults >/dev/null 2>&1 || true
  fi
fi
# --- Let's Encrypt certificates are renewed daily, 30 days before expiry
# (`berth letsencrypt:auto-renew` only touches apps that use it).
if have_systemd; then
  want_service="[Unit]
Description=berth: renew Let's Encrypt certificates that are due

[Service]
Type=oneshot
Environment=BERTH_ROOT=$BERTH_ROOT
ExecStart=$BIN letsencrypt:auto-renew"
  want_timer="[Unit]
Description=berth: renew Let's Encrypt certificates daily

[Timer]
OnCalendar=daily
RandomizedDelaySec=1h
Persistent=true

[Install]
WantedBy=timers.target"
  if [ "$(cat /etc/systemd/system/berth-letsencrypt.service 2>/dev/null)" != "$want_service" ] ||
    [ "$(cat /etc/systemd/system/berth-letsencrypt.timer 2>/dev/null)" != "$want_timer" ]; then
    printf '%s\n' "$want_service" > /etc/systemd/system/berth-letsencrypt.service
    printf '%s\n' "$want_timer" > /etc/systemd/system/berth-letsencrypt.timer
    systemctl daemon-reload
  fi
  systemctl enable --now berth-letsencrypt.timer >/dev/null 2>&1
elif [ -d /etc/cron.d ]; then
  printf '%s\n' "# Written by berth's install.sh: renew Let's Encrypt certificates that are due." \
    "17 3 * * * root BERTH_ROOT=$BERTH_ROOT $BIN letsencrypt:auto-renew >/dev/null" > /etc/cron.d/berth-letsencrypt
else
  say "No systemd and no cron here: run 'berth letsencrypt:auto-renew' daily to renew Let's Encrypt certificates"
fi
# --- app.json cron jobs: one scheduler, always running.
if have_systemd; then
  want_cron="[Unit]
Description=berth: run the apps' cron jobs on schedule
After=network-online.target

[Service]
Environment=BERTH_ROOT=$BERTH_ROOT
ExecStart=$BIN cron:scheduler
Restart=always
# Jobs run as their own processes and finish when the scheduler restarts.
KillMode=process

[Install]
WantedBy=multi-user.target"
  if [ "$(cat /etc/systemd/system/berth-cron.service 2>/dev/null)" != "$want_cron" ]; then
    printf '%s\n' "$want_cron" > /etc/systemd/system/berth-cron.service
    systemctl daemon-reload
  fi
  systemctl enable --now berth-cron.service >/dev/null 2>&1
  systemctl try-restart berth-cron.service >/dev/null 2>&1 || true
else
  # The init script starts it at boot; now, once, unless it runs.
  BERTH_ROOT=$BERTH_ROOT start-stop-daemon --start --quiet --background --make-pidfile \
    --pidfile /run/berth-cron.pid --exec "$BIN" -- cron:scheduler >/dev/null 2>&1 || true
fi
say "Restoring apps that should be running"
"$BIN" ps:restore 2>&1 | sed 's/^/       /' || say "Some apps did not come back (see above); the rest run"

# Keys added before berth knew grants could do everything: on the first
# install that brings grants, they stay admins (ssh-keys:revoke narrows them).
if [ ! -f "$BERTH_ROOT/ssh-grants.json" ]; then
  "$BIN" ssh-keys:list | while read -r name _; do
    "$BIN" ssh-keys:grant "$name" --admin >/dev/null
  done
fi

# --- The demo: examples/catmeow deployed by a real git push over ssh
# (forced: the demo commit is install.sh's own, and changes with berth).
key=$BERTH_ROOT/install_key
if [ ! -f "$key" ]; then
  ssh-keygen -q -t ed25519 -N '' -C "berth install.sh" -f "$key"
fi
# (Re)register it when authorized_keys lacks it or holds an older install key.
fingerprint=$(ssh-keygen -lf "$key.pub" | cut -d' ' -f2)
keys_file=/home/berth/.ssh/authorized_keys
if ! "$BIN" ssh-keys:list | grep -qx "install ssh-ed25519 $fingerprint" ||
  grep 'ssh-command --key' "$keys_file" | grep -qv '",restrict,pty '; then
  "$BIN" ssh-keys:remove install >/dev/null 2>&1 || true
  "$BIN" ssh-keys:add install "$key.pub" --admin >/dev/null
fi
# Keys added before berth knew grants: install's own key is an admin.
"$BIN" ssh-keys:grant install --admin >/dev/null
# The invoking user's own key, so `git push berth@host` works for them too.
if [ -n "${SUDO_USER:-}" ]; then
  home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
  for pub in "$home"/.ssh/id_ed25519.pub "$home"/.ssh/id_rsa.pub; do
    if [ -f "$pub" ] && ! "$BIN" ssh-keys:list | grep -q "^$SUDO_USER "; then
      "$BIN" ssh-keys:add "$SUDO_USER" "$pub" --admin >/dev/null && say "Added $pub as admin key $SUDO_USER"
      break
    fi
  done
fi

if $offline; then
  [ -f "$here/offline/bundle.tar" ] || die "offline/bundle.tar is missing: run scripts/offline-kit.sh on a connected machine first"
  say "Loading offline/bundle.tar: the stack, the service images and the catmeow demo"
  "$BIN" bundle:load "$here/offline/bundle.tar" 2>&1 | sed 's/^/       /'
fi

# --- Backing services: plugins/service installed once per kind, under the
# kind's name (its namespace: postgres:create, redis:create), from a copy
# in /usr/local/share/berth; then their images, built like the stack and
# cached by recipe hash (offline, they came in the bundle above).
if ! diff -rq "$here/plugins/service" /usr/local/share/berth/plugins/service >/dev/null 2>&1; then
  rm -rf /usr/local/share/berth/plugins/service
  mkdir -p /usr/local/share/berth/plugins
  cp -a "$here/plugins/service" /usr/local/share/berth/plugins/service
fi
for kind in postgres redis; do
  if "$BIN" plugin:installed "$kind" >/dev/null 2>&1; then
    "$BIN" plugin:update "$kind" >/dev/null
  else
    "$BIN" plugin:install /usr/local/share/berth/plugins/service --name "$kind" | sed 's/^/       /'
  fi
done
if ! $offline; then
  say "Building the service images (once; then from /var/cache/berth/stacks)"
  "$BIN" plugin:install-dependencies 2>&1 | sed 's/^/       /'
fi
demo=$BERTH_ROOT/tmp/catmeow-demo
rm -rf "$demo"
mkdir -p "$demo"
cp -a "$here/examples/catmeow/." "$demo/"
(
  cd "$demo"
  export GIT_AUTHOR_DATE="2026-01-01T00:00:00Z" GIT_COMMITTER_DATE="2026-01-01T00:00:00Z"
  git init -q -b main
  git add .
  git -c user.name=berth -c user.email=install@berth commit -q -m "catmeow"
  $offline && exit 0
  say "Deploying examples/catmeow with git push berth@127.0.0.1:catmeow main"
  GIT_SSH_COMMAND="ssh -i $key -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=$BERTH_ROOT/known_hosts -o LogLevel=ERROR" \
    git push -q --force berth@127.0.0.1:catmeow main 2>&1 | sed 's/^/       /'
)
rm -rf "$demo"
domain=$("$BIN" domains:report-global | head -n 1)
url="http://catmeow.$domain"
answers() {
  for _ in $(seq 25); do
    answer=$(curl -s -m 2 -H "Host: catmeow.$domain" http://127.0.0.1/ || true)
    [ "$answer" = "Cat dreams meow.." ] && return 0
    sleep 0.2
  done
  return 1
}
# The demo commit is always the same, so on a host that has it already the
# push changes nothing: when that copy does not answer, build it again.
if ! answers && ! $offline; then
  say "catmeow does not answer yet; rebuilding it from its pushed commit"
  "$BIN" ps:rebuild catmeow 2>&1 | sed 's/^/       /'
  answers || true
fi
[ "$answer" = "Cat dreams meow.." ] || die "catmeow does not answer at $url (got: ${answer:-nothing})"
say "catmeow answers at $url:"
echo "       \$ curl -H 'Host: catmeow.$domain' http://127.0.0.1/"
echo "       $answer"
say "berth is installed: $("$BIN" version), state in $BERTH_ROOT"
