#!/usr/bin/env bash
# The Log Service seed program's approach against the agent, side by side
# on the same simulated Logstore (siem-agent simulate --vendor sls, LZ4
# bodies, signatures checked): both read every shard in a consumer group
# of their own and send each log as `||key=value` in an RFC 5424 message
# over TCP to the same sink.
#
#   seed    bench/sls_seed.py: the official SDK's ConsumerWorker, as the
#           seed's article configures it (heartbeat 20 s, fetch every 1 s).
#   agent   siem-agent --format kv --kv-separator '||' --syslog-format
#           rfc5424 -o REMOTE -t tcp://..., one cron run.
#
# Alternating, RUNS times each. Prints each run's logs, wall seconds,
# logs/s, CPU microseconds per log (user + system), peak RSS and MB of
# syslog sent per CPU second (the seed's article reports 10 MB/s of raw
# logs at 20% of a core, 50 MB per CPU second), then the medians and the
# ratios. Nothing is asserted.
#
#   bench/sls.sh                       # 100 000 logs, 4 shards, 3 runs each
#   LOGS=20000 RUNS=1 bench/sls.sh     # short (CI)
#
# Needs the SDK's virtual environment (./install.sh --test-deps); adds
# pysyslogclient (bench/sls-requirements.txt) to it.
set -euo pipefail
cd "$(dirname "$0")/.."
LOGS=${LOGS:-100000}
SHARDS=${SHARDS:-4}
RUNS=${RUNS:-3}

venv=target/sdk-venv
[ -x "$venv/bin/python" ] || { echo "sls.sh: $venv is missing: run ./install.sh --test-deps" >&2; exit 1; }
"$venv/bin/python" -c 'import pysyslogclient' 2>/dev/null ||
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r bench/sls-requirements.txt

cargo build --release --locked --quiet
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$PWD/$target ;; esac
bin=$target/release/siem-agent
work=$(mktemp -d)
sim_pid= sink_pid=
cleanup() {
    [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null
    [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

coproc SIM { exec "$bin" simulate --port 0 --vendor sls --tenant bench --key-id AK-bench \
    --key-secret bench-secret --events "$LOGS" --shards "$SHARDS" --per-second 300 --plain; }
sim_pid=$SIM_PID
read -r line <&"${SIM[0]}"
api_port=${line##*:}

python3 bench/rate_sink.py "$work/sink" &
sink_pid=$!
for _ in $(seq 100); do [ -s "$work/sink" ] && break; sleep 0.1; done # readiness: the port file
[ -s "$work/sink" ] || { echo "sls.sh: the sink did not start" >&2; exit 1; }
sink_port=$(cat "$work/sink")
received() { cat "$work/sink.count" 2>/dev/null || echo "0 0"; }

# run NAME GROUP COMMAND...: one whole read of the Logstore; appends
# "name logs wall_s cpu_us_per_log peak_kib bytes" to $work/results.
run() {
    local name=$1
    shift
    local before_n before_b after_n after_b
    read -r before_n before_b <<<"$(received)"
    python3 bench/rusage.py "$work/cost" "$@" >/dev/null 2>"$work/err" ||
        { echo "sls.sh: $name failed:" >&2; tail -5 "$work/err" >&2; exit 1; }
    # The sink counts a connection's messages when it closes.
    for _ in $(seq 200); do
        read -r after_n after_b <<<"$(received)"
        [ $((after_n - before_n)) -ge "$LOGS" ] && break
        sleep 0.05
    done
    read -r user sys wall peak <"$work/cost"
    awk -v n="$name" -v l="$((after_n - before_n))" -v b="$((after_b - before_b))" \
        -v u="$user" -v s="$sys" -v w="$wall" -v p="$peak" 'BEGIN {
        printf "%-6s logs=%-7d wall_s=%-7.2f logs_per_s=%-8.0f cpu_us_per_log=%-7.2f peak_rss_mib=%-6.1f mb_per_cpu_s=%.1f\n",
            n, l, w, l / w, (u + s) * 1e6 / l, p / 1024, b / 1e6 / (u + s) }' | tee -a "$work/results"
}

echo "== $LOGS logs in $SHARDS shards, ||key=value in RFC 5424 over TCP"
for i in $(seq "$RUNS"); do
    SLS_ENDPOINT="127.0.0.1:$api_port" SLS_AK_ID=AK-bench SLS_AK_KEY=bench-secret \
        SLS_PROJECT=bench SLS_LOGSTORE=demo-logs SLS_CG="seed-$i" SYSLOG_HOST=127.0.0.1 \
        SYSLOG_PORT="$sink_port" BENCH_LOGS="$LOGS" HTTP_PROXY="http://127.0.0.1:$api_port" NO_PROXY= \
        run seed "$venv/bin/python" bench/sls_seed.py
    rm -rf "$work/state"
    mkdir -p "$work/state"
    cat >"$work/config.json" <<JSON
{"source":"sls","endpoint":"http://127.0.0.1:$api_port","project":"bench","logstore":"demo-logs",
 "access_key_id":"AK-bench","access_key_secret":"bench-secret","start":"begin","consumer_group":"agent-$i"}
JSON
    chmod 600 "$work/config.json"
    run agent "$bin" --config "$work/config.json" --state-dir "$work/state" \
        --log-file "$work/agent.log" --format kv --kv-separator '||' --syslog-format rfc5424 \
        -o REMOTE -t "tcp://127.0.0.1:$sink_port"
done

echo "== medians"
# median NAME KEY: the median of KEY over NAME's runs.
median() {
    grep "^$1 " "$work/results" | tr ' ' '\n' | sed -n "s/^$2=//p" | sort -g |
        awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
for name in seed agent; do
    printf '%-6s logs_per_s=%s cpu_us_per_log=%s peak_rss_mib=%s mb_per_cpu_s=%s\n' "$name" \
        "$(median "$name" logs_per_s)" "$(median "$name" cpu_us_per_log)" \
        "$(median "$name" peak_rss_mib)" "$(median "$name" mb_per_cpu_s)"
done
awk -v sl="$(median seed logs_per_s)" -v al="$(median agent logs_per_s)" \
    -v sc="$(median seed cpu_us_per_log)" -v ac="$(median agent cpu_us_per_log)" \
    -v sr="$(median seed peak_rss_mib)" -v ar="$(median agent peak_rss_mib)" 'BEGIN {
    printf "agent/seed: logs per second %.1fx, CPU per log %.3fx (%.1fx less), peak RSS %.2fx\n",
        al / sl, ac / sc, sc / ac, ar / sr }'
