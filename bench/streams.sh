#!/usr/bin/env bash
# A backfill over several streams against a distant API: the simulator
# delays every answer (--latency-ms), and the agent exports CloudSOC's two
# apps (Investigate and Detect, 1 000 logs a page) to a FILE.
#
# Side by side in one run, alternating: the streams read at once (the
# default, --parallel-streams 4) and one after another (--parallel-streams
# 1, what every build before the option did), and with BASE_BIN the build
# before this change as well. Then the slowest stream alone. Prints each
# run's wall seconds and CPU microseconds per log (user + system), then
# the medians and the ratios: wall time against the slowest stream alone,
# CPU per log against one after another. Nothing is asserted.
#
#   bench/streams.sh                                  # 150 ms, 15 + 10 pages, 3 runs each
#   LATENCY_MS=300 INVESTIGATE=20000 DETECT=20000 RUNS=5 bench/streams.sh
#   BASE_BIN=/path/to/older/siem-agent bench/streams.sh
set -euo pipefail
cd "$(dirname "$0")/.."
LATENCY_MS=${LATENCY_MS:-150}
INVESTIGATE=${INVESTIGATE:-15000}
DETECT=${DETECT:-10000}
RUNS=${RUNS:-3}

cargo build --release --locked --quiet
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$PWD/$target ;; esac
bin=$target/release/siem-agent
work=$(mktemp -d)
sim_pid=
cleanup() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

coproc SIM { exec "$bin" simulate --port 0 --events "$INVESTIGATE" --detect-events "$DETECT" \
    --per-second 200 --plain --cache --latency-ms "$LATENCY_MS"; }
sim_pid=$SIM_PID
read -r line <&"${SIM[0]}"
port=${line##*:}
cat >"$work/config.json" <<JSON
{"api_server":"http://127.0.0.1:$port/","key_id":"demo-key","key_secret":"demo-secret","tenant":"demo"}
JSON
chmod 600 "$work/config.json"

# run NAME BINARY ARGS...: one backfill from scratch; appends
# "name wall_s cpu_us_per_log logs" to $work/results.
run() {
    local name=$1 agent=$2
    shift 2
    rm -f "$work"/export_log.state* "$work"/out.log*
    python3 bench/rusage.py "$work/cost" "$agent" --config "$work/config.json" \
        --log-file "$work/agent.log" --severity all --settle 0 -o FILE -f "$work/out.log" "$@" >/dev/null
    local logs
    logs=$(cat "$work"/out.log* | wc -l)
    read -r user sys wall _ <"$work/cost"
    awk -v n="$name" -v u="$user" -v s="$sys" -v w="$wall" -v l="$logs" \
        'BEGIN { printf "%-12s wall_s=%-7.3f cpu_us_per_log=%-7.2f logs=%d\n", n, w, (u + s) * 1e6 / l, l }' |
        tee -a "$work/results"
}

echo "== $INVESTIGATE + $DETECT logs in two streams, every answer $LATENCY_MS ms late"
for _ in $(seq "$RUNS"); do
    run parallel "$bin"
    run sequential "$bin" --parallel-streams 1
    [ -n "${BASE_BIN:-}" ] && run base "$BASE_BIN"
done
for _ in $(seq "$RUNS"); do
    run slowest "$bin" --elastica_app investigate
done

median() { # name field
    grep "^$1 " "$work/results" | sed "s/.*$2=\([0-9.]*\).*/\1/" | sort -n |
        awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
echo "== medians"
for n in parallel sequential ${BASE_BIN:+base} slowest; do
    printf '%-12s wall_s=%-7s cpu_us_per_log=%s\n' "$n" "$(median "$n" wall_s)" "$(median "$n" cpu_us_per_log)"
done
awk -v p="$(median parallel wall_s)" -v q="$(median sequential wall_s)" -v s="$(median slowest wall_s)" \
    -v pc="$(median parallel cpu_us_per_log)" -v qc="$(median sequential cpu_us_per_log)" \
    'BEGIN { printf "wall: parallel/slowest-alone %.2f, sequential/slowest-alone %.2f; CPU per log: parallel/sequential %.2f\n", p / s, q / s, pc / qc }'
if [ -n "${BASE_BIN:-}" ]; then
    awk -v pc="$(median parallel cpu_us_per_log)" -v bc="$(median base cpu_us_per_log)" \
        -v p="$(median parallel wall_s)" -v b="$(median base wall_s)" \
        'BEGIN { printf "against BASE_BIN: wall %.2f, CPU per log %.2f\n", p / b, pc / bc }'
fi
