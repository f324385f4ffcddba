#!/bin/sh
# Installs siem-agent, or the packages its tests need.
#
#   ./install.sh [--prefix DIR] [--config-dir DIR] [--bin FILE]
#       Builds the release binary (or takes FILE), installs it as
#       DIR/bin/siem-agent (default /usr/local), creates the config directory
#       (default /etc/siem-agent, mode 700) with config.json from the example
#       (mode 600, never overwritten), and prints the cron line. Safe to run
#       again.
#
#   ./install.sh ... --systemd [--unit-dir DIR]
#       Also writes siem-agent.service (oneshot, hardened, StateDirectory)
#       and siem-agent.timer (every 10 minutes, Persistent) to DIR (default
#       /etc/systemd/system), and siem-agent.env beside config.json for
#       the export's options, instead of the cron line.
#
#   The man page and shell completions (bash, zsh, fish) are installed
#   under DIR/share.
#
#   ./install.sh --test-deps
#       Installs the Debian packages the test suite needs (a real rsyslog
#       with RELP and TLS), if they are missing (needs root), and the Log
#       Service's Python SDK in target/sdk-venv.
set -eu

prefix=/usr/local
config_dir=/etc/siem-agent
test_deps=0
binary=
systemd=0
unit_dir=/etc/systemd/system
here=$(cd "$(dirname "$0")" && pwd)

usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || { echo "install.sh: --prefix needs a directory" >&2; exit 1; }; prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --config-dir) [ $# -ge 2 ] || { echo "install.sh: --config-dir needs a directory" >&2; exit 1; }; config_dir=$2; shift 2 ;;
        --config-dir=*) config_dir=${1#*=}; shift ;;
        --bin) [ $# -ge 2 ] || { echo "install.sh: --bin needs a file" >&2; exit 1; }; binary=$2; shift 2 ;;
        --bin=*) binary=${1#*=}; shift ;;
        --test-deps) test_deps=1; shift ;;
        --systemd) systemd=1; shift ;;
        --unit-dir) [ $# -ge 2 ] || { echo "install.sh: --unit-dir needs a directory" >&2; exit 1; }; unit_dir=$2; shift 2 ;;
        --unit-dir=*) unit_dir=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option '$1' (see --help)" >&2; exit 1 ;;
    esac
done

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
        cat >"$config_dir/siem-agent.env" <<ENV
# Options of the export run by siem-agent.service (see README.md), e.g.
# SIEM_AGENT_ARGS=--severity all -o REMOTE -t relp://siem.example:2514
SIEM_AGENT_ARGS=
# The config: this file, or a directory of tenant files (one per *.json).
SIEM_AGENT_CONFIG=$config_dir/config.json
ENV
        chmod 600 "$config_dir/siem-agent.env"
        echo "created $config_dir/siem-agent.env: the export's options"
    fi
    umask 022
    install -d "$unit_dir"
    cat >"$unit_dir/siem-agent.service" <<UNIT
[Unit]
Description=Export CloudSOC logs to the SIEM (siem-agent)
Documentation=man:siem-agent(1)
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
Environment=SIEM_AGENT_CONFIG=$config_dir/config.json
EnvironmentFile=-$config_dir/siem-agent.env
ExecStart=$prefix/bin/siem-agent --config \${SIEM_AGENT_CONFIG} --state-dir \${STATE_DIRECTORY} --log-file \${LOGS_DIRECTORY}/siem-agent.log \$SIEM_AGENT_ARGS
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
    cat >"$unit_dir/siem-agent.timer" <<UNIT
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

*/10 * * * * $prefix/bin/siem-agent --config $config_dir/config.json

Add the options you need (--severity, -o REMOTE -t HOST:PORT, --format ...); see README.md.
CRON
