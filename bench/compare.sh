#!/usr/bin/env bash
# The agent against its references, side by side in one run, on the same
# simulated API (plain logs, pages served from memory) and the same TCP sink
# (bench/sink.py), CEF in RFC 5424 over TCP, LF-framed:
# - the I/O floor (bench/io_floor.rs): the same pages read and the same bytes
#   written in the same batches, without parsing or formatting;
# - the equal-work Python agent (bench/py_equal.py): the agent's own CEF,
#   every field, byte for byte;
# - the Python anchor (bench/py_agent.py: the seeds' approach, six fields; a
#   copy of the project's shared anchor, kept here so that this runs from a
#   clone).
#
# Prints, for each run (alternating agent, Python, agent, ...): logs
# delivered, CPU microseconds per log (user + system of the process), wall
# seconds, logs per second, peak RSS; then the medians and the ratio of CPU
# per log. Then each format's CPU per log, the peak RSS of a large backfill,
# and --rate accuracy. Nothing is asserted: these are measurements.
#
#   bench/compare.sh                       # 100 000 logs, 5 runs each
#   LOGS=20000 RUNS=1 FLOOR_PAIRS=2 BIG=0 RATES=1000 RATE_SECONDS=3 bench/compare.sh   # the short version CI runs
#   LOGS=... RUNS=... FORMATS="cef kv" BIG=1000000 RATES="1000 10000 100000" RATE_SECONDS=10
set -euo pipefail
cd "$(dirname "$0")/.."
LOGS=${LOGS:-100000}
RUNS=${RUNS:-5}
# Agent-floor pairs run after the RUNS rounds (without the Python ones).
FLOOR_PAIRS=${FLOOR_PAIRS:-10}
FORMATS=${FORMATS:-cef leef leef1 kv json rfc5424}
BIG=${BIG:-1000000}
RATES=${RATES:-1000 10000 100000}
# Each --rate run lasts this long: its start-up and end (about 30 ms: the
# process, the first page, the last confirmation) are in its wall time.
RATE_SECONDS=${RATE_SECONDS:-10}
# The anchor and the sink: the repository's own (SHARED=DIR takes others).
shared=${SHARED:-bench}
[ -r "$shared/py_agent.py" ] && [ -r "$shared/sink.py" ] ||
    { echo "compare.sh: $shared/py_agent.py and sink.py are needed (SHARED=DIR)" >&2; exit 1; }
command -v /usr/bin/time >/dev/null || { echo "compare.sh: /usr/bin/time is needed (apt-get install time)" >&2; exit 1; }

cargo build --release --locked --quiet
cargo build --release --locked --quiet --example io_floor
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$PWD/$target ;; esac
bin=$target/release/siem-agent
floor=$target/release/examples/io_floor
work=$(mktemp -d)
sim_pid= sink_pid=
cleanup() {
    [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null
    [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null
    [ -n "${rate_pid:-}" ] && kill "$rate_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

start_sim() { # logs
    [ -n "$sim_pid" ] && { kill "$sim_pid" 2>/dev/null; wait "$sim_pid" 2>/dev/null || true; }
    coproc SIM { exec "$bin" simulate --port 0 --plain --cache --events "$1" --detect-events 0 --per-second 200; }
    sim_pid=$SIM_PID
    read -r line <&"${SIM[0]}"
    cat >"$work/config.json" <<JSON
{"api_server":"http://127.0.0.1:${line##*:}/","key_id":"demo-key","key_secret":"demo-secret","tenant":"demo"}
JSON
    chmod 600 "$work/config.json"
}

python3 "$shared/sink.py" "$work/sink" &
sink_pid=$!
for _ in $(seq 100); do [ -s "$work/sink" ] && break; sleep 0.1; done # readiness: the port file
[ -s "$work/sink" ] || { echo "compare.sh: the sink did not start" >&2; exit 1; }
sink=127.0.0.1:$(cat "$work/sink")
dest=$sink

counted="$work/sink.count"
# The sinks write "COUNT" (sink.py) or "COUNT BYTES" (rate_sink.py).
received() { awk '{ print $1; exit }' "$counted" 2>/dev/null || echo 0; }

# Runs a command under bench/rusage.py (CPU to the microsecond, peak RSS by
# GNU time); prints "logs cpu_us_per_log wall logs_per_s peak_kib".
measure() { # expected_logs command...
    local expected=$1
    shift
    local before after
    before=$(received)
    python3 bench/rusage.py "$work/time" "$@" >/dev/null 2>"$work/err" ||
        { echo "compare.sh: $* failed:" >&2; cat "$work/err" >&2; exit 1; }
    # The sink counts a connection's messages when it closes.
    for _ in $(seq 100); do
        after=$(received)
        [ $((after - before)) -ge "$expected" ] && break
        sleep 0.05
    done
    read -r user sys wall kib <"$work/time"
    awk -v n=$((after - before)) -v u="$user" -v s="$sys" -v w="$wall" -v k="$kib" \
        'BEGIN { printf "%d %.3f %.2f %.0f %d\n", n, (n ? (u + s) * 1e6 / n : 0), w, (w > 0 ? n / w : 0), k }'
}

# Every run reads from the same start (yesterday, 00:00 UTC; the simulated
# logs are all later), so that each asks for the same pages and, after the
# first, the simulator answers them from its cache, as it does the floor's:
# an agent measured while the simulator makes its pages on the other core
# would be measured on a busier machine than its references.
start_date=$(date -u -d yesterday +%F)
# The agent's command line, with a fresh state directory each time (so
# each run is a whole backfill). `agent ARGS` runs it; `measure_agent N
# ARGS` measures it.
agent_cmd() { # state_dir args...
    local state=$1
    shift
    printf '%s\0' "$bin" --config "$work/config.json" --state-dir "$state" \
        --log-file "$work/agent.log" --severity all --settle 0 --start-date "$start_date" -o REMOTE --socket-type TCP -t "$dest" "$@"
}
agent() {
    local cmd
    mapfile -d '' cmd < <(agent_cmd "$(mktemp -d "$work/state.XXXXXX")" "$@")
    "${cmd[@]}"
}
measure_agent() { # expected_logs args...
    local n=$1 cmd
    shift
    mapfile -d '' cmd < <(agent_cmd "$(mktemp -d "$work/state.XXXXXX")" "$@")
    measure "$n" "${cmd[@]}"
}

line() { # label "logs cpu wall rate kib"
    read -r n cpu wall rate kib <<<"$2"
    printf '%-18s %9s %14s %9s %11s %10s\n' "$1" "$n" "$cpu" "$wall" "$rate" "$((kib / 1024)) MiB"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "== agent vs its references: $LOGS plain logs, CEF in RFC 5424 over TCP, $RUNS runs each, alternating"
echo "   machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -r)"
echo "   floor: bench/io_floor.rs (the same pages read, the same bytes written in the same batches, no parsing or formatting)"
echo "   python-equal: bench/py_equal.py (the agent's CEF, every field); python-seed: bench/py_agent.py (the seeds' six fields)"
start_sim "$LOGS"
agent --syslog-format rfc5424 >/dev/null 2>&1 || true # warm the simulator's page cache
# The agent's bytes per frame (its dry run prints the frames, LF-framed),
# which the floor writes for each log.
frame=$("$bin" --config "$work/config.json" --state-dir "$(mktemp -d "$work/state.XXXXXX")" \
    --log-file "$work/agent.log" --severity all --settle 0 --dry-run --format cef --syslog-format rfc5424 \
    --max-events 2000 2>/dev/null | awk '{ b += length($0) + 1 } END { printf "%d", (NR ? b / NR : 900) }')
since=${start_date}T00:00:00
api=$(sed -n 's/.*"api_server":"\([^"]*\)".*/\1/p' "$work/config.json")
printf '%-18s %9s %14s %9s %11s %10s\n' run logs "CPU µs/log" "wall s" "logs/s" "peak RSS"
: >"$work/a.cpu"
: >"$work/p.cpu"
: >"$work/e.cpu"
: >"$work/f.cpu"
# One run of the agent, then one of the floor, each line printed and its
# CPU per log kept.
agent_then_floor() { # run number
    local r
    r=$(measure_agent "$LOGS" --format cef --syslog-format rfc5424)
    line "agent $1" "$r"
    echo "$r" | awk '{ print $2 }' >>"$work/a.cpu"
    r=$(measure "$LOGS" "$floor" "$api" demo demo-key demo-secret "$sink" "$frame" "$since")
    line "floor $1" "$r"
    echo "$r" | awk '{ print $2 }' >>"$work/f.cpu"
}
for i in $(seq "$RUNS"); do
    agent_then_floor "$i"
    r=$(measure "$LOGS" python3 bench/py_equal.py "$work/config.json" "$sink" "$since")
    line "python-equal $i" "$r"
    echo "$r" | awk '{ print $2 }' >>"$work/e.cpu"
    r=$(measure "$LOGS" python3 "$shared/py_agent.py" "$work/config.json" "$sink")
    line "python-seed $i" "$r"
    echo "$r" | awk '{ print $2 }' >>"$work/p.cpu"
done
# More agent-floor pairs (each well under a second): the machine's noise
# moves a single run by a third, so the floor ratio is the median of the
# ratios of many pairs, each pair run back to back.
for i in $(seq "$FLOOR_PAIRS"); do
    agent_then_floor "$((RUNS + i))"
done
paste "$work/a.cpu" "$work/f.cpu" | awk '$2 > 0 { print $1 / $2 }' >"$work/ratio"
ratio=$(median <"$work/ratio" | awk '{ printf "%.1f", $1 }')
ratio_range=$(sort -n "$work/ratio" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.1f-%.1f", lo, hi }')
a=$(median <"$work/a.cpu")
f=$(median <"$work/f.cpu")
e=$(median <"$work/e.cpu")
p=$(median <"$work/p.cpu")
awk -v a="$a" -v f="$f" -v e="$e" -v p="$p" -v fr="$frame" 'BEGIN {
    printf "median CPU per log: agent %.2f µs, floor %.2f µs, python-equal %.2f µs, python-seed %.2f µs (%d bytes per frame)\n", a, f, e, p, fr
    printf "the agent uses %.1fx the floor'\''s CPU per log (goal: at most 3x), %.1fx less than python-equal (goal: 20x), %.1fx less than python-seed\n", (f > 0 ? a / f : 0), (a > 0 ? e / a : 0), (a > 0 ? p / a : 0)
}'
echo "the agent against the floor, pair by pair ($(wc -l <"$work/ratio") pairs): median ${ratio}x ($ratio_range)"

echo "== each format, CPU per log ($LOGS logs over TCP; rfc5424 with its own header)"
printf '%-18s %9s %14s %9s %11s %10s\n' format logs "CPU µs/log" "wall s" "logs/s" "peak RSS"
for f in $FORMATS; do
    line "$f" "$(measure_agent "$LOGS" --format "$f")"
done

if [ "$BIG" != 0 ]; then
    echo "== a backfill of $BIG logs (peak RSS must stay flat)"
    start_sim "$BIG"
    agent >/dev/null 2>&1 || true # warm the page cache
    line "backfill" "$(measure_agent "$BIG" --format cef --syslog-format rfc5424)"
fi

echo "== --rate accuracy ($RATE_SECONDS seconds' worth each, wall time of the whole run, start-up included)"
# To a sink that closes its side when the agent closes its own, as rsyslog
# does (the shared sink keeps it open, and the agent's last
# confirmation then waits 100 ms for it: see README, delivery guarantees).
python3 bench/rate_sink.py "$work/rate_sink" &
rate_pid=$!
for _ in $(seq 100); do [ -s "$work/rate_sink" ] && break; sleep 0.1; done # readiness: the port file
[ -s "$work/rate_sink" ] || { echo "compare.sh: the rate sink did not start" >&2; exit 1; }
dest=127.0.0.1:$(cat "$work/rate_sink")
counted="$work/rate_sink.count"
for r in $RATES; do
    n=$((r * RATE_SECONDS))
    start_sim "$n"
    agent >/dev/null 2>&1 || true
    read -r got cpu wall _ _ <<<"$(measure_agent "$n" --rate "$r")"
    awk -v r="$r" -v n="$got" -v w="$wall" \
        'BEGIN { printf "rate=%-7s logs=%-7s seconds=%-6s achieved=%-8.0f error=%+.1f%%\n", r, n, w, n / w, (n / w - r) * 100 / r }'
done
