#!/usr/bin/env bash
# Builds the siem-agent Debian package: the one command for it.
#
#   deploy/debian/build.sh
#
# 1. cargo build --release --locked;
# 2. generates what Cargo.toml's [package.metadata.deb] assets take from the
#    binary into target/deb-assets/: the man page (siem-agent man) and the
#    bash, zsh and fish completions (siem-agent completions SHELL);
# 3. cargo deb --no-build --locked.
# Installs nothing (cargo-deb must be there: cargo install cargo-deb
# --locked; deploy/debian/test.sh installs the version CI pins). The last
# line printed is the path of the package, target/debian/siem-agent_*.deb.
# `cargo deb` alone would stop at the missing target/deb-assets files.
set -euo pipefail

case "${1:-}" in
    -h|--help) sed -n '2,/^set /{/^#/!q;s/^# \{0,1\}//;p;}' "$0"; exit 0 ;;
    "") ;;
    *) echo "deploy/debian/build.sh: takes no arguments (see --help)" >&2; exit 1 ;;
esac

cd "$(dirname "$0")/../.."
repo=$(pwd)

fail() { echo "deploy/debian/build.sh: $*" >&2; exit 1; }

cargo deb --version >/dev/null 2>&1 ||
    fail "cargo-deb is missing: cargo install cargo-deb --locked (deploy/debian/test.sh installs the pinned version)"

cargo build --release --locked
target_dir=${CARGO_TARGET_DIR:-$repo/target}
bin=$target_dir/release/siem-agent
[ -x "$bin" ] || fail "no $bin after the build"

# Cargo.toml's [package.metadata.deb] assets name these paths.
assets=$repo/target/deb-assets
rm -rf "$assets"
mkdir -p "$assets"
"$bin" man >"$assets/siem-agent.1"
"$bin" completions bash >"$assets/siem-agent.bash"
"$bin" completions zsh >"$assets/_siem-agent"
"$bin" completions fish >"$assets/siem-agent.fish"
for f in siem-agent.1 siem-agent.bash _siem-agent siem-agent.fish; do
    [ -s "$assets/$f" ] || fail "generated $assets/$f is empty"
done
grep -q '^\.TH' "$assets/siem-agent.1" || fail "the man page has no .TH line"

rm -f "$target_dir"/debian/siem-agent_*.deb
deb=$(cargo deb --no-build --locked | tail -n1)
[ -f "$deb" ] || fail "cargo deb printed '$deb', not a file"
echo "$deb"
