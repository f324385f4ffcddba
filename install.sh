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
#   ./install.sh --test-deps
#       Installs the Debian packages the test suite needs (a real rsyslog
#       with RELP and TLS), if they are missing. Needs root.
set -eu

prefix=/usr/local
config_dir=/etc/siem-agent
test_deps=0
binary=
here=$(cd "$(dirname "$0")" && pwd)

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || { echo "install.sh: --prefix needs a directory" >&2; exit 1; }; prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --config-dir) [ $# -ge 2 ] || { echo "install.sh: --config-dir needs a directory" >&2; exit 1; }; config_dir=$2; shift 2 ;;
        --config-dir=*) config_dir=${1#*=}; shift ;;
        --bin) [ $# -ge 2 ] || { echo "install.sh: --bin needs a file" >&2; exit 1; }; binary=$2; shift 2 ;;
        --bin=*) binary=${1#*=}; shift ;;
        --test-deps) test_deps=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option '$1' (see --help)" >&2; exit 1 ;;
    esac
done

if [ "$test_deps" = 1 ]; then
    packages="rsyslog rsyslog-relp rsyslog-gnutls openssl faketime"
    missing=
    for p in $packages; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    if [ -z "$missing" ]; then
        echo "test dependencies present:$(for p in $packages; do printf ' %s' "$p"; done)"
        exit 0
    fi
    sudo=
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || { echo "install.sh: installing$missing needs root" >&2; exit 1; }
        sudo=sudo
    fi
    echo "installing:$missing"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
    echo "test dependencies installed"
    exit 0
fi

if [ -z "$binary" ]; then
    command -v cargo >/dev/null 2>&1 || { echo "install.sh: cargo not found: install Rust first (https://rustup.rs)" >&2; exit 1; }
    (cd "$here" && cargo build --release --locked)
    binary=$here/target/release/siem-agent
fi
[ -x "$binary" ] || { echo "install.sh: $binary is not an executable" >&2; exit 1; }

install -d "$prefix/bin"
install -m 755 "$binary" "$prefix/bin/siem-agent"
echo "installed $prefix/bin/siem-agent ($("$prefix/bin/siem-agent" --version))"

umask 077
install -d -m 700 "$config_dir"
if [ -e "$config_dir/config.json" ]; then
    echo "kept $config_dir/config.json"
else
    install -m 600 "$here/config.example.json" "$config_dir/config.json"
    echo "created $config_dir/config.json: replace its values with the API key file CloudSOC gives you"
fi

cat <<CRON

Add this line to root's crontab (crontab -e) to export every 10 minutes:

*/10 * * * * $prefix/bin/siem-agent --config $config_dir/config.json

Add the options you need (--severity, -o REMOTE -t HOST:PORT, --format ...); see README.md.
CRON
