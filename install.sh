#!/bin/sh
# Installs siem-agent, removes it again, or installs the packages its tests
# need.
#
#   ./install.sh [--prefix DIR] [--config-dir DIR] [--state-dir DIR] [--bin FILE]
#       Builds the release binary (or takes FILE), installs it as
#       DIR/bin/siem-agent (default /usr/local), the man page and shell
#       completions (bash, zsh, fish) under DIR/share, creates the config
#       directory (default /etc/siem-agent, mode 700) with config.json from
#       the example (mode 600, never overwritten), and prints the cron line,
#       which keeps the state (cursor, lock, status) in the state directory
#       (default /var/lib/siem-agent; the binary makes it, mode 700). Safe
#       to run again.
#
#   ./install.sh ... --systemd [--unit-dir DIR]
#       Also writes siem-agent.service (oneshot, hardened, StateDirectory)
#       and siem-agent.timer (every 10 minutes, Persistent) to DIR (default
#       /etc/systemd/system), and siem-agent.env beside config.json for
#       the export's options, instead of the cron line. SIEM_AGENT_ARGS in
#       siem-agent.env is split into words as sh(1) splits them, so an
#       option's value with spaces is quoted as in a shell:
#           SIEM_AGENT_ARGS=--app "Yahoo Mail" -o REMOTE -t relp://siem.example:2514
#       (start with an option, not a quote; quotes, not backslashes, which
#       systemd removes when it reads the file; $ and ` are the shell's).
#
#   ./install.sh --uninstall [--prefix DIR] [--config-dir DIR] [--systemd [--unit-dir DIR]] [--purge [--state-dir DIR]]
#       Removes what an install with the same options installed: the
#       binary, the man page and the completions; with --systemd also the
#       timer and service (stopped and disabled first when systemd runs
#       them) and siem-agent.env if it is as installed (an edited one is
#       kept, and said so). The config directory (config.json) and the
#       state directory are kept; --purge removes them too (each only if
#       its name holds "siem-agent", as the defaults do). The log file
#       is never removed (/var/log/siem-agent.log, or /var/log/siem-agent/
#       with --systemd). A binary that a package installed is not touched.
#
#   ./install.sh --test-deps
#       Installs the Debian packages the test suite needs (a real rsyslog
#       with RELP and TLS), if they are missing (needs root), and the Log
#       Service's Python SDK in target/sdk-venv.
set -eu

prefix=/usr/local
config_dir=/etc/siem-agent
state_dir=/var/lib/siem-agent
test_deps=0
binary=
systemd=0
uninstall=0
purge=0
unit_dir=/etc/systemd/system
here=$(cd "$(dirname "$0")" && pwd)

# The comment block above, from its second line to the first line that is
# not a comment.
usage() { sed -n '2,/^[^#]/{/^#/!q;s/^# \{0,1\}//;p;}' "$0"; }

die() { echo "install.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --config-dir) [ $# -ge 2 ] || die "--config-dir needs a directory"; config_dir=$2; shift 2 ;;
        --config-dir=*) config_dir=${1#*=}; shift ;;
        --state-dir) [ $# -ge 2 ] || die "--state-dir needs a directory"; state_dir=$2; shift 2 ;;
        --state-dir=*) state_dir=${1#*=}; shift ;;
        --bin) [ $# -ge 2 ] || die "--bin needs a file"; binary=$2; shift 2 ;;
        --bin=*) binary=${1#*=}; shift ;;
        --test-deps) test_deps=1; shift ;;
        --systemd) systemd=1; shift ;;
        --unit-dir) [ $# -ge 2 ] || die "--unit-dir needs a directory"; unit_dir=$2; shift 2 ;;
        --unit-dir=*) unit_dir=${1#*=}; shift ;;
        --uninstall) uninstall=1; shift ;;
        --purge) purge=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done
[ "$purge" = 0 ] || [ "$uninstall" = 1 ] || die "--purge goes with --uninstall (see --help)"

# What install.sh puts under the prefix.
installed_files() {
    printf '%s\n' "$prefix/bin/siem-agent" \
        "$prefix/share/man/man1/siem-agent.1" \
        "$prefix/share/bash-completion/completions/siem-agent" \
        "$prefix/share/zsh/site-functions/_siem-agent" \
        "$prefix/share/fish/vendor_completions.d/siem-agent.fish"
}

# siem-agent.env as install.sh writes it (--uninstall compares with it).
env_text() {
    cat <<ENV
# Options of the export run by siem-agent.service (see siem-agent(1)).
# SIEM_AGENT_ARGS is split into words as sh(1) splits them: quote an
# option's value that holds spaces, e.g.
# SIEM_AGENT_ARGS=--severity all --app "Yahoo Mail" -o REMOTE -t relp://siem.example:2514
# Start with an option, not a quote; use quotes, not backslashes (systemd
# removes those when it reads this file); \$ and \` are the shell's too.
SIEM_AGENT_ARGS=
# The config: this file, or a directory of tenant files (one per *.json).
SIEM_AGENT_CONFIG=$config_dir/config.json
ENV
}

service_text() {
    cat <<UNIT
[Unit]
Description=Export CloudSOC logs to the SIEM (siem-agent)
Documentation=man:siem-agent(1)
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
# The config (a file, or a directory of tenant files) and the export's
# options, in siem-agent.env (which overrides the default here).
# SIEM_AGENT_ARGS is split into words by sh, not by systemd (whose \$VAR
# splitting would cut --app "Yahoo Mail" in two), so that an option's
# value may hold spaces when quoted as in a shell:
#   SIEM_AGENT_ARGS=--severity all --app "Yahoo Mail" -o REMOTE -t relp://siem.example:2514
# (set -f: a * or ? in it stays as written). sh execs the agent, which
# stays the service's main process.
Environment=SIEM_AGENT_CONFIG=$config_dir/config.json
EnvironmentFile=-$config_dir/siem-agent.env
ExecStart=/bin/sh -c 'set -f; eval "set -- \$\$SIEM_AGENT_ARGS" && exec "$prefix/bin/siem-agent" --config "\$\$SIEM_AGENT_CONFIG" --state-dir "\$\$STATE_DIRECTORY" --log-file "\$\$LOGS_DIRECTORY/siem-agent.log" "\$\$@"'
# A run that takes longer is stopped (SIGTERM: what the outputs confirmed
# is saved; the next run goes on from there), so that a wedged run cannot
# hold up every later one. A first backfill of 180 days fits easily.
TimeoutStartSec=4h
StateDirectory=siem-agent
StateDirectoryMode=0700
LogsDirectory=siem-agent
# Hardening: the agent reads its config, writes its state and log, and
# talks to the API and the SIEM. A FILE output elsewhere needs
# ReadWritePaths= in a drop-in (systemctl edit siem-agent.service).
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
CapabilityBoundingSet=
UMask=0077
# A run holds at most three pages (--max-page-mib each, 64 by default) and
# a few MiB besides; a broken or hostile API cannot take the machine.
MemoryMax=512M
UNIT
}

timer_text() {
    cat <<UNIT
[Unit]
Description=Run siem-agent every 10 minutes
Documentation=man:siem-agent(1)

[Timer]
OnCalendar=*:0/10
Persistent=true
RandomizedDelaySec=30

[Install]
WantedBy=timers.target
UNIT
}

# systemd runs the units in $unit_dir (not a directory of a test).
systemd_manages_units() {
    [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 &&
        case "$unit_dir" in /etc/systemd/system | /etc/systemd/system/) true ;; *) false ;; esac
}

remove_file() {
    if [ -e "$1" ] || [ -L "$1" ]; then
        rm -f "$1"
        echo "removed $1"
    fi
}

# --purge removes a directory only if its name says it is siem-agent's, so
# that a mistaken --config-dir /etc cannot take /etc with it.
purge_dir() {
    [ -e "$1" ] || return 0
    case "${1%/}" in
        *siem-agent*) rm -rf "$1"; echo "removed $1 ($2)" ;;
        *) echo "install.sh: not removing $1: its name does not say siem-agent; remove it by hand" >&2 ;;
    esac
}

if [ "$uninstall" = 1 ]; then
    # The package's binary is the package's to remove.
    if command -v dpkg-query >/dev/null 2>&1 &&
        owner=$(dpkg-query -S "$prefix/bin/siem-agent" 2>/dev/null); then
        die "$prefix/bin/siem-agent belongs to the package ${owner%%:*}: apt remove ${owner%%:*} (or apt purge) removes it"
    fi
    if [ "$systemd" = 1 ]; then
        if systemd_manages_units; then
            systemctl disable --now siem-agent.timer >/dev/null 2>&1 || true
            systemctl stop siem-agent.service >/dev/null 2>&1 || true
        fi
        remove_file "$unit_dir/timers.target.wants/siem-agent.timer"
        remove_file "$unit_dir/siem-agent.timer"
        remove_file "$unit_dir/siem-agent.service"
        if systemd_manages_units; then
            systemctl daemon-reload || true
        fi
        env_file=$config_dir/siem-agent.env
        if [ "$purge" = 0 ] && [ -e "$env_file" ]; then
            if env_text | cmp -s - "$env_file"; then
                remove_file "$env_file"
            else
                echo "kept $env_file: it holds your options (--purge removes it)"
            fi
        fi
    elif [ -e "$unit_dir/siem-agent.service" ] || [ -e "$unit_dir/siem-agent.timer" ]; then
        echo "left $unit_dir/siem-agent.service and .timer: add --systemd to remove them"
    fi
    installed_files | while IFS= read -r f; do remove_file "$f"; done
    if [ "$purge" = 1 ]; then
        purge_dir "$config_dir" "the config"
        purge_dir "$state_dir" "the state"
    else
        if [ -e "$config_dir" ]; then echo "kept $config_dir (the config; --purge removes it)"; fi
        if [ -e "$state_dir" ]; then echo "kept $state_dir (the cursor: a new install goes on from it; --purge removes it)"; fi
    fi
    if [ "$systemd" = 1 ]; then log=/var/log/siem-agent/; else log=/var/log/siem-agent.log; fi
    echo "siem-agent is uninstalled; its log ($log) is left for you to remove"
    exit 0
fi
if [ "$test_deps" = 1 ]; then
    packages="rsyslog rsyslog-relp rsyslog-gnutls openssl faketime time python3-venv"
    missing=
    for p in $packages; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    if [ -z "$missing" ]; then
        echo "test dependencies present:$(for p in $packages; do printf ' %s' "$p"; done)"
    else
        sudo=
        if [ "$(id -u)" != 0 ]; then
            command -v sudo >/dev/null 2>&1 || { echo "install.sh: installing$missing needs root" >&2; exit 1; }
            sudo=sudo
        fi
        echo "installing:$missing"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
        echo "test dependencies installed"
    fi
    # The Log Service's official Python SDK, which tests/sls_sdk.rs runs
    # against the simulator, in a virtual environment of its own
    # (target/sdk-venv; nothing installed system-wide).
    venv=$here/target/sdk-venv
    want=$(cat "$here/tests/sdk/requirements.txt")
    if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$want" ]; then
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/tests/sdk/requirements.txt"
        printf '%s\n' "$want" >"$venv/.installed"
        echo "installed in target/sdk-venv: the Log Service SDK ($(head -n1 "$here/tests/sdk/requirements.txt") and what it needs)"
    else
        echo "present in target/sdk-venv: the Log Service SDK"
    fi
    exit 0
fi

if [ -z "$binary" ]; then
    if command -v cargo >/dev/null 2>&1; then
        (cd "$here" && cargo build --release --locked)
    elif [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ] &&
        user_cargo=$(sudo -u "$SUDO_USER" -H sh -c 'command -v cargo || { [ -x "$HOME/.cargo/bin/cargo" ] && echo "$HOME/.cargo/bin/cargo"; }') &&
        [ -n "$user_cargo" ]; then
        # Rust from rustup lives in the invoking user's home, not on
        # root's PATH: build as that user, install as root.
        echo "building as $SUDO_USER with $user_cargo"
        sudo -u "$SUDO_USER" -H sh -c "cd '$here' && '$user_cargo' build --release --locked"
    else
        echo "install.sh: cargo is not on root's PATH (Rust from rustup is installed per user)." >&2
        echo "  Build as the user who has Rust:   cargo build --release --locked" >&2
        echo "  then install as root:             sudo ./install.sh --bin target/release/siem-agent" >&2
        echo "  (no Rust yet: https://rustup.rs; siem-agent needs Rust 1.89 or later and a C compiler)" >&2
        exit 1
    fi
    binary=$here/target/release/siem-agent
fi
[ -x "$binary" ] || { echo "install.sh: $binary is not an executable" >&2; exit 1; }

install -d "$prefix/bin"
install -m 755 "$binary" "$prefix/bin/siem-agent"
echo "installed $prefix/bin/siem-agent ($("$prefix/bin/siem-agent" --version))"

# The man page and completions, from the binary's own definitions.
install -d "$prefix/share/man/man1" "$prefix/share/bash-completion/completions" \
    "$prefix/share/zsh/site-functions" "$prefix/share/fish/vendor_completions.d"
"$prefix/bin/siem-agent" man >"$prefix/share/man/man1/siem-agent.1"
"$prefix/bin/siem-agent" completions bash >"$prefix/share/bash-completion/completions/siem-agent"
"$prefix/bin/siem-agent" completions zsh >"$prefix/share/zsh/site-functions/_siem-agent"
"$prefix/bin/siem-agent" completions fish >"$prefix/share/fish/vendor_completions.d/siem-agent.fish"
echo "installed the man page and completions under $prefix/share"

umask 077
install -d -m 700 "$config_dir"
if [ -e "$config_dir/config.json" ]; then
    echo "kept $config_dir/config.json"
else
    install -m 600 "$here/config.example.json" "$config_dir/config.json"
    echo "created $config_dir/config.json: replace its values with the API key file CloudSOC gives you"
fi

if [ "$systemd" = 1 ]; then
    if [ -e "$config_dir/siem-agent.env" ]; then
        echo "kept $config_dir/siem-agent.env"
    else
        env_text >"$config_dir/siem-agent.env"
        chmod 600 "$config_dir/siem-agent.env"
        echo "created $config_dir/siem-agent.env: the export's options"
    fi
    umask 022
    install -d "$unit_dir"
    service_text >"$unit_dir/siem-agent.service"
    timer_text >"$unit_dir/siem-agent.timer"
    echo "wrote $unit_dir/siem-agent.service and siem-agent.timer"
    cat <<SYSTEMD

Put the export's options in $config_dir/siem-agent.env, then:

systemctl daemon-reload && systemctl enable --now siem-agent.timer

State: /var/lib/siem-agent; log: /var/log/siem-agent/siem-agent.log; runs: journalctl -u siem-agent.
SYSTEMD
    exit 0
fi

cat <<CRON

Add this line to root's crontab (crontab -e) to export every 10 minutes:

*/10 * * * * $prefix/bin/siem-agent --config $config_dir/config.json --state-dir $state_dir

Add the options you need (--severity, -o REMOTE -t HOST:PORT, --format ...;
quote a value with spaces: --app "Yahoo Mail"); see siem-agent(1) and README.md.
CRON

# An earlier cron line without --state-dir kept the state beside config.json.
old=
for f in export_log.state .export_log.state.prev last_job.status; do
    if [ -e "$config_dir/$f" ] && ! [ "$config_dir" -ef "$state_dir" ]; then
        old="$old $config_dir/$f"
    fi
done
if [ -n "$old" ]; then
    cat <<MOVE

$config_dir holds the state of an earlier cron line. Move it before the
first run with the line above, or that run starts over (and sends again
what was sent):

mkdir -p -m 700 $state_dir && mv$old $state_dir/
MOVE
fi
