#!/usr/bin/env bash
# Builds the siem-agent Debian package (deploy/debian/build.sh, with cargo-deb)
# and tests it for real: contents, modes and owners, control fields, lintian,
# then install (the man page's FILES, ENVIRONMENT and EXAMPLES sections, the
# example configs), runs as the siem-agent user against a simulator,
# systemd-analyze verify, reinstall, remove and purge. Needs root (dpkg -i);
# made for CI's Debian 12 machine.
#
#   deploy/debian/test.sh
#
# Leaves the machine as it found it, also on failure: the package purged, the
# siem-agent user removed if this script made it, the simulator stopped. It
# refuses to start where siem-agent is installed or its directories exist,
# since it would replace them. Prints one "ok: ..." line per check and stops
# at the first failure with "FAIL: ...".
set -euo pipefail

CARGO_DEB_VERSION=3.8.0
started=$SECONDS

cd "$(dirname "$0")/../.."
repo=$(pwd)

ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
# expect_stat PATH "OWNER:GROUP MODE" WHAT
expect_stat() {
    local got
    got=$(stat -c '%U:%G %a' "$1" 2>/dev/null) || fail "$3: $1 does not exist"
    [ "$got" = "$2" ] || fail "$3: $1 is $got, expected $2"
    ok "$3: $1 is $2"
}
absent() { [ ! -e "$1" ] && [ ! -L "$1" ] || fail "$2: $1 still exists"; ok "$2: $1 is gone"; }
present() { [ -e "$1" ] || fail "$2: $1 is missing"; ok "$2: $1 is there"; }
pkg_status() { dpkg-query -W -f='${db:Status-Abbrev}' siem-agent 2>/dev/null | tr -d ' ' || true; }

[ "$(id -u)" = 0 ] || fail "must run as root (it installs the package)"

# --- Refuse to clobber a real installation -----------------------------------
status=$(pkg_status)
case "$status" in
    ""|un|pn) ;;
    *) fail "siem-agent is already known to dpkg (status '$status'): this test installs and purges it; purge it first" ;;
esac
for d in /etc/siem-agent /var/lib/siem-agent /var/log/siem-agent; do
    [ ! -e "$d" ] || fail "$d exists: this test would replace and then delete it; move it away first"
done
user_existed=0
if getent passwd siem-agent >/dev/null; then user_existed=1; fi

tmp=$(mktemp -d)
sim_pid=
drain_pid=
installed=0
cleanup() {
    local rc=$?
    set +e
    if [ -n "$sim_pid" ]; then kill "$sim_pid" 2>/dev/null; wait "$sim_pid" 2>/dev/null; fi
    if [ -n "$drain_pid" ]; then kill "$drain_pid" 2>/dev/null; wait "$drain_pid" 2>/dev/null; fi
    exec 3<&- 2>/dev/null
    if [ "$installed" = 1 ] && [ -n "$(pkg_status | grep -v -x -e un -e pn)" ]; then
        echo "cleanup: purging siem-agent" >&2
        dpkg -P siem-agent >/dev/null 2>&1 || echo "cleanup: dpkg -P siem-agent failed" >&2
    fi
    # The package keeps its system user on purge (see debian/postrm); the
    # test removes it again if it was not there before.
    if [ "$user_existed" = 0 ] && getent passwd siem-agent >/dev/null; then
        deluser --system --quiet siem-agent >/dev/null 2>&1 || userdel siem-agent
    fi
    if [ "$user_existed" = 0 ] && getent group siem-agent >/dev/null; then
        delgroup --system --quiet siem-agent >/dev/null 2>&1 || groupdel siem-agent
    fi
    rm -rf "$tmp"
    if [ "$rc" != 0 ]; then echo "deploy/debian/test.sh: FAILED after $((SECONDS - started)) s" >&2; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. Tools ----------------------------------------------------------------
apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then apt-get update -qq; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
if [ "$(cargo deb --version 2>/dev/null || true)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
    echo "installing cargo-deb $CARGO_DEB_VERSION"
    cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION"
fi
ok "tools: $(cargo deb --version)"
need=
command -v lintian >/dev/null || need="$need lintian"
command -v systemd-analyze >/dev/null || need="$need systemd"
command -v adduser >/dev/null || need="$need adduser"
if [ -n "$need" ]; then echo "installing:$need"; apt_install $need; fi
ok "tools: $(lintian --version), $(systemd-analyze --version | head -n1)"

# --- 2. Build ----------------------------------------------------------------
# deploy/debian/build.sh: the release build, target/deb-assets (man page,
# completions) and cargo deb --no-build; its last line is the package.
build_started=$SECONDS
deploy/debian/build.sh | tee "$tmp/build.out"
deb=$(tail -n1 "$tmp/build.out")
build_seconds=$((SECONDS - build_started))
[ -f "$deb" ] || fail "deploy/debian/build.sh printed '$deb', not a file"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
arch=$(dpkg --print-architecture)
[ "$(basename "$deb")" = "siem-agent_${version}_${arch}.deb" ] ||
    fail "package file is $(basename "$deb"), expected siem-agent_${version}_${arch}.deb"
ok "built $deb in ${build_seconds} s"

# --- 3. Contents and control fields ------------------------------------------
echo "--- dpkg-deb -c $deb"
dpkg-deb -c "$deb" | tee "$tmp/contents"
declare -A want=(
    [./usr/bin/siem-agent]="-rwxr-xr-x root/root"
    [./usr/share/man/man1/siem-agent.1.gz]="-rw-r--r-- root/root"
    [./usr/share/bash-completion/completions/siem-agent]="-rw-r--r-- root/root"
    [./usr/share/zsh/vendor-completions/_siem-agent]="-rw-r--r-- root/root"
    [./usr/share/fish/vendor_completions.d/siem-agent.fish]="-rw-r--r-- root/root"
    [./etc/siem-agent/config.example.json]="-rw-r--r-- root/root"
    [./usr/lib/systemd/system/siem-agent.service]="-rw-r--r-- root/root"
    [./usr/lib/systemd/system/siem-agent.timer]="-rw-r--r-- root/root"
    [./usr/share/doc/siem-agent/copyright]="-rw-r--r-- root/root"
    [./usr/share/doc/siem-agent/changelog.gz]="-rw-r--r-- root/root"
    [./usr/share/lintian/overrides/siem-agent]="-rw-r--r-- root/root"
)
# An example config per source.
examples=(cirrus cloudsoc mcas rest-okta sls)
for e in "${examples[@]}"; do
    want[./usr/share/doc/siem-agent/examples/$e.json]="-rw-r--r-- root/root"
done
# dpkg-deb -c: MODE OWNER/GROUP SIZE DATE TIME PATH; owners print as names
# or as 0/0 depending on how the tar was written.
declare -A got=()
while read -r mode owner _ _ _ path; do
    if [ "$owner" = 0/0 ]; then owner=root/root; fi
    if [ "${mode:0:1}" = d ]; then
        [ "$mode $owner" = "drwxr-xr-x root/root" ] || fail "contents: directory $path is $mode $owner, expected drwxr-xr-x root/root"
        continue
    fi
    [ -n "${want[$path]+x}" ] || fail "contents: unexpected $mode $owner $path"
    got[$path]="$mode $owner"
done <"$tmp/contents"
ok "contents: every directory is drwxr-xr-x root/root, no file unaccounted for"
for path in "${!want[@]}"; do
    [ -n "${got[$path]+x}" ] || fail "contents: $path is missing"
    [ "${got[$path]}" = "${want[$path]}" ] || fail "contents: $path is ${got[$path]}, expected ${want[$path]}"
    ok "contents: $path ${want[$path]}"
done

dpkg-deb -x "$deb" "$tmp/x"
zcat "$tmp/x/usr/share/man/man1/siem-agent.1.gz" | grep -q '^\.TH' || fail "contents: the man page is not a gzipped roff page"
ok "contents: man page is gzipped roff"
for e in "${examples[@]}"; do
    cmp -s "$tmp/x/usr/share/doc/siem-agent/examples/$e.json" "examples/$e.json" ||
        fail "contents: examples/$e.json differs from the repository's"
done
ok "contents: /usr/share/doc/siem-agent/examples/ holds the repository's examples/*.json"
cmp -s "$tmp/x/etc/siem-agent/config.example.json" config.example.json || fail "contents: config.example.json differs from the repository's"
ok "contents: /etc/siem-agent/config.example.json is the repository's config.example.json"
cmp -s "$tmp/x/usr/lib/systemd/system/siem-agent.service" debian/siem-agent.service || fail "contents: the service differs from debian/siem-agent.service"
ok "contents: siem-agent.service is debian/siem-agent.service"

control_field() { dpkg-deb -f "$deb" "$1"; }
expect_field() {
    local v
    v=$(control_field "$1")
    [[ "$v" =~ $2 ]] || fail "control: $1 is '$v', expected to match /$2/"
    ok "control: $1: $v"
}
expect_field Package '^siem-agent$'
expect_field Version "^${version//./\\.}\$"
expect_field Architecture "^${arch}\$"
expect_field Maintainer '^[^<]+ <[^>]+@[^>]+>$'
expect_field Section '^admin$'
expect_field Priority '^optional$'
expect_field Depends '(^|, )adduser(,|$)'
expect_field Depends '(^|, )libc6 \(>= [0-9.]+\)(,|$)'
expect_field Installed-Size '^[0-9]+$'
synopsis=$(control_field Description | head -n1)
[ -n "$synopsis" ] && [ "${#synopsis}" -le 80 ] || fail "control: the synopsis '$synopsis' is empty or over 80 characters"
ok "control: Description: $synopsis"
changelog_version=$(sed -n '1s/^siem-agent (\([^)]*\)).*/\1/p' debian/changelog)
[ "$changelog_version" = "$version" ] ||
    fail "debian/changelog's latest entry is '$changelog_version', the package is $version: add an entry"
ok "control: debian/changelog's latest entry is $version"
dpkg-deb --ctrl-tarfile "$deb" | tar -tvf - >"$tmp/control"
for s in postinst prerm postrm; do
    grep -Eq "^-rwxr-xr-x .* \./$s\$" "$tmp/control" || fail "control: $s missing or not 755"
    ok "control: $s is 755"
done
[ "$(dpkg-deb -I "$deb" conffiles)" = "/etc/siem-agent/config.example.json" ] ||
    fail "control: conffiles are '$(dpkg-deb -I "$deb" conffiles)', expected /etc/siem-agent/config.example.json alone"
ok "control: conffiles: /etc/siem-agent/config.example.json"

# --- 4. lintian --------------------------------------------------------------
# Errors and warnings fail; overridden tags (debian/siem-agent.lintian-
# overrides, each justified there) and info tags do not.
echo "--- lintian"
lintian_rc=0
lintian --fail-on error,warning --display-info --show-overrides "$deb" >"$tmp/lintian.out" 2>&1 || lintian_rc=$?
# lintian's note about root is about lintian itself, not the package.
grep -v -x 'running with root privileges is not recommended!' "$tmp/lintian.out" || true
[ "$lintian_rc" = 0 ] || fail "lintian exited $lintian_rc: errors or warnings (above)"
ok "lintian: no error, no warning"

# --- 5. Install --------------------------------------------------------------
installed=1
dpkg -i "$deb"
[ "$(pkg_status)" = ii ] || fail "install: dpkg status is '$(pkg_status)', expected ii"
ok "install: dpkg -i, status ii"
IFS=: read -r _ _ uid gid _ home shell < <(getent passwd siem-agent) || fail "install: no siem-agent user"
[ "$uid" -lt 1000 ] || fail "install: siem-agent's uid $uid is not a system uid"
[ "$(getent group siem-agent | cut -d: -f3)" = "$gid" ] || fail "install: siem-agent's primary group is not the siem-agent group"
[ "$home" = /var/lib/siem-agent ] || fail "install: siem-agent's home is $home"
case "$shell" in */nologin|/bin/false) ;; *) fail "install: siem-agent's shell is $shell, expected nologin" ;; esac
ok "install: system user siem-agent (uid $uid, group siem-agent, home $home, shell $shell)"
expect_stat /usr/bin/siem-agent "root:root 755" install
"/usr/bin/siem-agent" --version >/dev/null || fail "install: siem-agent --version failed"
ok "install: $(/usr/bin/siem-agent --version)"
expect_stat /var/lib/siem-agent "siem-agent:siem-agent 750" install
expect_stat /var/log/siem-agent "siem-agent:siem-agent 750" install
expect_stat /etc/siem-agent "root:siem-agent 750" install
expect_stat /etc/siem-agent/config.example.json "root:root 644" install
expect_stat /etc/siem-agent/config.json "root:siem-agent 640" install
cmp -s /etc/siem-agent/config.json config.example.json || fail "install: the created config.json is not the example"
ok "install: config.json was created from the example"
expect_stat /etc/siem-agent/siem-agent.env "root:siem-agent 640" install
# The man page and the examples, where dpkg put them (a dpkg path-exclude
# for /usr/share/man or /usr/share/doc, as minimal images have, is said).
excluded=$(grep -hs '^path-exclude' /etc/dpkg/dpkg.cfg /etc/dpkg/dpkg.cfg.d/* | grep -E '/usr/share/(man|doc)' || true)
[ -z "$excluded" ] || fail "install: dpkg excludes $(echo "$excluded" | tr '\n' ' ')on this machine: the installed man page and examples cannot be checked"
man_page=/usr/share/man/man1/siem-agent.1.gz
expect_stat "$man_page" "root:root 644" install
zcat "$man_page" >"$tmp/siem-agent.1"
for section in FILES ENVIRONMENT EXAMPLES; do
    grep -Eq "^\.SH \"?$section\"?\$" "$tmp/siem-agent.1" || fail "install: $man_page has no $section section"
done
ok "install: $man_page has the FILES, ENVIRONMENT and EXAMPLES sections"
grep -q 'SIEM_AGENT_HEC_TOKEN' "$tmp/siem-agent.1" || fail "install: the man page's ENVIRONMENT lacks SIEM_AGENT_HEC_TOKEN"
if command -v man >/dev/null; then
    MANWIDTH=80 man -l "$man_page" >"$tmp/siem-agent.txt" 2>/dev/null || fail "install: man -l $man_page failed"
    grep -q '^EXAMPLES' "$tmp/siem-agent.txt" || fail "install: man -l $man_page does not render an EXAMPLES section"
    ok "install: man -l $man_page renders"
fi
expect_stat /usr/share/doc/siem-agent/examples "root:root 755" install
for e in "${examples[@]}"; do
    expect_stat "/usr/share/doc/siem-agent/examples/$e.json" "root:root 644" install
done
expect_stat /usr/lib/systemd/system/siem-agent.service "root:root 644" install
expect_stat /usr/lib/systemd/system/siem-agent.timer "root:root 644" install
absent /etc/systemd/system/timers.target.wants/siem-agent.timer "install: the timer is not enabled"
enabled=$(systemctl is-enabled siem-agent.timer 2>/dev/null || true)
[ "$enabled" = disabled ] || fail "install: systemctl is-enabled siem-agent.timer says '$enabled', expected disabled"
ok "install: systemctl is-enabled siem-agent.timer: disabled"
if [ -d /run/systemd/system ]; then
    active=$(systemctl is-active siem-agent.timer 2>/dev/null || true)
    [ "$active" = inactive ] || fail "install: siem-agent.timer is $active, expected inactive"
    ok "install: siem-agent.timer is inactive"
fi

# --- 6. Runs as the siem-agent user ------------------------------------------
cd /
runuser -u siem-agent -- /usr/bin/siem-agent --demo >"$tmp/demo.out" 2>"$tmp/demo.err" ||
    fail "run: siem-agent --demo as siem-agent exited $? ($(tail -n3 "$tmp/demo.err"))"
[ -s "$tmp/demo.out" ] || fail "run: siem-agent --demo printed no log"
ok "run: siem-agent --demo as siem-agent: exit 0, $(wc -l <"$tmp/demo.out") lines"

exec 3< <(exec /usr/bin/siem-agent simulate --port 0 2>"$tmp/sim.err")
sim_pid=$!
IFS= read -r -t 60 ready <&3 || fail "run: the simulator printed no readiness line ($(tail -n3 "$tmp/sim.err"))"
[[ "$ready" =~ ^listening\ on\ http://127\.0\.0\.1:([0-9]+)$ ]] || fail "run: unexpected simulator line '$ready'"
port=${BASH_REMATCH[1]}
# Keep reading its stdout so that it can never block on a full pipe.
cat <&3 >"$tmp/sim.out" &
drain_pid=$!
exec 3<&-
ok "run: simulator (pid $sim_pid) listening on port $port"

cfg=/etc/siem-agent/config.json
printf '{"user_id":"u","api_server":"http://127.0.0.1:%s/","key_id":"demo-key","key_secret":"demo-secret","tenant":"demo"}\n' "$port" >"$tmp/config.json"
install -m 640 -o root -g siem-agent "$tmp/config.json" "$cfg"
expect_stat "$cfg" "root:siem-agent 640" run

runuser -u siem-agent -- /usr/bin/siem-agent check --config "$cfg" --state-dir /var/lib/siem-agent -o STREAM \
    >"$tmp/check.out" 2>&1 || { cat "$tmp/check.out" >&2; fail "run: siem-agent check as siem-agent exited non-zero"; }
sed 's/^/  check: /' "$tmp/check.out"
ok "run: siem-agent check as siem-agent: exit 0"

runuser -u siem-agent -- /usr/bin/siem-agent --config "$cfg" --state-dir /var/lib/siem-agent \
    --log-file /var/log/siem-agent/siem-agent.log -o STREAM -s stdout >"$tmp/export.out" 2>"$tmp/export.err" ||
    { cat "$tmp/export.err" >&2; fail "run: the export as siem-agent exited non-zero"; }
[ -s "$tmp/export.out" ] || { cat "$tmp/export.err" >&2; fail "run: the export wrote nothing to stdout"; }
ok "run: export as siem-agent to stdout: exit 0, $(wc -l <"$tmp/export.out") logs"
if [ -s "$tmp/export.err" ]; then sed 's/^/  export stderr: /' "$tmp/export.err"; fi
expect_stat /var/lib/siem-agent/export_log.state "siem-agent:siem-agent 600" run
expect_stat /var/log/siem-agent/siem-agent.log "siem-agent:siem-agent 640" run

kill "$sim_pid"
wait "$sim_pid" 2>/dev/null || true
wait "$drain_pid" 2>/dev/null || true
sim_pid= drain_pid=
ok "run: simulator stopped"

# --- 7. systemd-analyze verify ------------------------------------------------
# Offline (no systemd as PID 1 needed). Only lines about our two units count:
# verify also loads the units ours refer to (network-online.target,
# timers.target, ...) and may print warnings about those, which are not ours.
units=(/usr/lib/systemd/system/siem-agent.service /usr/lib/systemd/system/siem-agent.timer)
verify_rc=0
systemd-analyze verify "${units[@]}" >"$tmp/verify.out" 2>&1 || verify_rc=$?
if [ -s "$tmp/verify.out" ]; then sed 's/^/  systemd-analyze: /' "$tmp/verify.out"; fi
if grep -E 'siem-agent\.(service|timer)' "$tmp/verify.out" >"$tmp/verify.ours"; then
    cat "$tmp/verify.ours" >&2
    fail "systemd-analyze verify: complaints about our units (above)"
fi
[ "$verify_rc" = 0 ] || fail "systemd-analyze verify exited $verify_rc"
ok "systemd-analyze verify: siem-agent.service and siem-agent.timer"

# --- 8. Reinstall over itself --------------------------------------------------
before=$(sha256sum "$cfg" /etc/siem-agent/siem-agent.env; stat -c '%n %U:%G %a' "$cfg" /etc/siem-agent/siem-agent.env)
dpkg -i "$deb"
[ "$(pkg_status)" = ii ] || fail "reinstall: dpkg status is '$(pkg_status)', expected ii"
after=$(sha256sum "$cfg" /etc/siem-agent/siem-agent.env; stat -c '%n %U:%G %a' "$cfg" /etc/siem-agent/siem-agent.env)
[ "$before" = "$after" ] || fail "reinstall: config.json or siem-agent.env changed:
$before
---
$after"
ok "reinstall: config.json and siem-agent.env untouched (content, owner, mode)"
expect_stat /etc/siem-agent "root:siem-agent 750" reinstall
expect_stat /var/lib/siem-agent "siem-agent:siem-agent 750" reinstall
expect_stat /var/log/siem-agent "siem-agent:siem-agent 750" reinstall
present /var/lib/siem-agent/export_log.state reinstall
absent /etc/systemd/system/timers.target.wants/siem-agent.timer "reinstall: the timer is still not enabled"

# --- 8b. An upgrade keeps what the administrator changed -----------------------
# (the log directory opened to a log shipper's group; config.json replaced by
# tenant files): neither is undone nor brought back.
chmod 755 /var/log/siem-agent
mv "$cfg" "$tmp/config.json.saved"
dpkg -i "$deb"
expect_stat /var/log/siem-agent "siem-agent:siem-agent 755" "upgrade (the administrator's mode kept)"
absent "$cfg" "upgrade (a removed config.json stays removed)"
mv "$tmp/config.json.saved" "$cfg"
chmod 750 /var/log/siem-agent

# --- 8c. A tenants directory the service user cannot read is reported ----------
cp /etc/siem-agent/siem-agent.env "$tmp/env.saved"
install -d -o root -g siem-agent -m 750 /etc/siem-agent/tenants.d
install -o root -g root -m 600 /dev/null /etc/siem-agent/tenants.d/acme.json
echo 'SIEM_AGENT_CONFIG=/etc/siem-agent/tenants.d' >>/etc/siem-agent/siem-agent.env
dpkg -i "$deb" 2>"$tmp/upgrade.err" || { cat "$tmp/upgrade.err" >&2; fail "upgrade with tenants: dpkg -i failed"; }
grep -q "the siem-agent user cannot read /etc/siem-agent/tenants.d/acme.json" "$tmp/upgrade.err" ||
    { cat "$tmp/upgrade.err" >&2; fail "upgrade with tenants: no warning about an unreadable tenant file"; }
ok "upgrade with tenants: a tenant file the service user cannot read is reported"
rm -r /etc/siem-agent/tenants.d
cp "$tmp/env.saved" /etc/siem-agent/siem-agent.env

# --- 9. Remove: config, state and log stay ---------------------------------------
cfg_sum=$(sha256sum "$cfg")
dpkg -r siem-agent
[ "$(pkg_status)" = rc ] || fail "remove: dpkg status is '$(pkg_status)', expected rc"
ok "remove: dpkg -r, status rc"
for f in /usr/bin/siem-agent /usr/lib/systemd/system/siem-agent.service /usr/lib/systemd/system/siem-agent.timer \
    /usr/share/man/man1/siem-agent.1.gz /usr/share/bash-completion/completions/siem-agent \
    /usr/share/zsh/vendor-completions/_siem-agent /usr/share/fish/vendor_completions.d/siem-agent.fish \
    /usr/share/doc/siem-agent/examples; do
    absent "$f" remove
done
[ "$(sha256sum "$cfg")" = "$cfg_sum" ] || fail "remove: config.json changed"
ok "remove: config.json kept, unchanged"
present /etc/siem-agent/config.example.json remove
present /etc/siem-agent/siem-agent.env remove
present /var/lib/siem-agent/export_log.state remove
present /var/log/siem-agent/siem-agent.log remove
getent passwd siem-agent >/dev/null || fail "remove: the siem-agent user is gone"
ok "remove: the siem-agent user is kept"

# --- 10. Purge: everything of ours goes, the user stays ---------------------------
dpkg -P siem-agent
status=$(pkg_status)
case "$status" in ""|un|pn) ;; *) fail "purge: dpkg status is '$status', expected not installed" ;; esac
installed=0
ok "purge: dpkg -P, not installed"
absent /etc/siem-agent purge
absent /var/lib/siem-agent purge
absent /var/log/siem-agent purge
getent passwd siem-agent >/dev/null || fail "purge: the siem-agent user was removed (debian/postrm keeps it)"
ok "purge: the siem-agent user is kept, as designed (removed by this test's cleanup if it made it)"

echo "deploy/debian/test.sh: all passed in $((SECONDS - started)) s (build and package: ${build_seconds} s)"
