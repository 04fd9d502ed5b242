#!/usr/bin/env bash
# Overhead benchmark: how much latency and CPU Switchboard adds on top of a
# near-zero-cost upstream, next to nginx doing a plain proxy hop.
# Run by hand (not in CI); see bench/README.md.
set -euo pipefail

DURATION=${DURATION:-10}             # seconds per measured run
WARMUP=${WARMUP:-1}                  # seconds of unmeasured load before each run
CONNECTIONS=${CONNECTIONS:-"1 32"}
SKIP_GATEWAY=${SKIP_GATEWAY:-0}
FLOOR=${FLOOR:-0}                    # 1 adds axum-floor (bench/floor): the HTTP stack alone
KEEP_TMP=${KEEP_TMP:-0}
LIMITS=${LIMITS:-0}                  # 1: requests carry a key with every limit set (token counting on)
REDIS=${REDIS:-0}                    # 1 (with LIMITS=1): also target "redis", the same gateway with
                                     # state.redis on a redis-server sharing the load generator's core
REDIS_UNIX=${REDIS_UNIX:-0}          # 1 (with REDIS=1): also target "redis-unix", the same again reaching
                                     # that redis-server through its Unix socket
ROUNDS=${ROUNDS:-1}                  # >1: every scenario again, targets interleaved; medians at the end
PORT_UP=${PORT_UP:-18081}
PORT_UP_SSE=${PORT_UP_SSE:-18082}
PORT_PROXY=${PORT_PROXY:-18083}
PORT_PROXY_SSE=${PORT_PROXY_SSE:-18084}
PORT_GW=${PORT_GW:-18085}
PORT_FLOOR=${PORT_FLOOR:-18086}
PORT_FLOOR_SSE=${PORT_FLOOR_SSE:-18087}
PORT_COMPARE=${PORT_COMPARE:-18088}
PORT_REDIS=${PORT_REDIS:-18089}
PORT_GW_REDIS=${PORT_GW_REDIS:-18090}
PORT_GW_REDIS_UNIX=${PORT_GW_REDIS_UNIX:-18091}
# The proxy under test gets a core to itself; wrk and the upstream share the
# other, so the proxy's own cost is not blurred by the load generator's.
CORE_PROXY=${CORE_PROXY:-0}
CORE_LOAD=${CORE_LOAD:-1}

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
SWITCHBOARD_BIN=${SWITCHBOARD_BIN:-$REPO_DIR/target/release/switchboard}
COMPARE_BIN=${COMPARE_BIN:-}         # a second gateway build, measured as target "compare"
COMPARE_REDIS=${COMPARE_REDIS:-0}    # 1 (with REDIS=1): "compare" runs with state.redis too, on
                                     # the same redis-server under its own key prefix
FLOOR_BIN=$BENCH_DIR/floor/target/release/axum-floor
CLK_TCK=$(getconf CLK_TCK)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- prerequisites

install_prereqs() {
    local missing=()
    command -v nginx >/dev/null || missing+=(nginx)
    command -v wrk >/dev/null || missing+=(wrk)
    command -v curl >/dev/null || missing+=(curl)
    command -v taskset >/dev/null || missing+=(util-linux)
    command -v pgrep >/dev/null || missing+=(procps)
    ((${#missing[@]} == 0)) && return 0

    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || die "missing ${missing[*]}; install them or run as root"
        sudo=(sudo)
    fi
    log "installing ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    # Through env, because sudo's env_reset would drop a plain assignment.
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq "${missing[@]}" >/dev/null
}

install_prereqs
[[ -r /proc/self/stat ]] || die "needs Linux /proc for CPU and RSS accounting"

if [[ $SKIP_GATEWAY != 1 && ! -x $SWITCHBOARD_BIN ]]; then
    [[ $SWITCHBOARD_BIN == "$REPO_DIR/target/release/switchboard" ]] ||
        die "SWITCHBOARD_BIN=$SWITCHBOARD_BIN is not executable"
    # Built before anything is started so compilation never overlaps a run.
    log "building switchboard (release)"
    (cd "$REPO_DIR" && cargo build --release)
fi
[[ -z $COMPARE_BIN || -x $COMPARE_BIN ]] || die "COMPARE_BIN=$COMPARE_BIN is not executable"

if [[ $FLOOR == 1 ]]; then
    log "building axum-floor (release)"
    (cd "$BENCH_DIR/floor" && cargo build --release --quiet)
fi

PIN=1
if (($(nproc) < 2)); then
    log "warning: fewer than 2 usable cores; running unpinned, numbers will be noisy"
    PIN=0
fi

# Runs a command on one core. exec keeps $! pointing at the real process.
pinned() {
    local core=$1
    shift
    if ((PIN)); then
        exec taskset -c "$core" "$@"
    else
        exec "$@"
    fi
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ports=("$PORT_UP" "$PORT_UP_SSE" "$PORT_PROXY" "$PORT_PROXY_SSE")
[[ $SKIP_GATEWAY == 1 ]] || ports+=("$PORT_GW")
[[ $FLOOR != 1 ]] || ports+=("$PORT_FLOOR" "$PORT_FLOOR_SSE")
[[ -z $COMPARE_BIN ]] || ports+=("$PORT_COMPARE")
[[ $REDIS != 1 ]] || ports+=("$PORT_REDIS" "$PORT_GW_REDIS")
[[ $REDIS_UNIX != 1 ]] || ports+=("$PORT_GW_REDIS_UNIX")
[[ $REDIS_UNIX != 1 || $REDIS == 1 ]] || die "REDIS_UNIX=1 needs REDIS=1"
[[ $REDIS != 1 || $LIMITS == 1 ]] || die "REDIS=1 needs LIMITS=1: Redis holds a key's limits"
[[ $REDIS != 1 ]] || command -v redis-server >/dev/null || die "REDIS=1 needs redis-server"
for p in "${ports[@]}"; do
    ! port_in_use "$p" || die "port $p is already in use (override with PORT_* variables)"
done

# ------------------------------------------------------------ process handling

RUN=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench.XXXXXX")
# nginx workers may drop to an unprivileged user; let them reach their files.
chmod 755 "$RUN"
STARTED=()

cleanup() {
    local rc=$? pid i
    trap - EXIT INT TERM
    for pid in "${STARTED[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED[@]}"; do
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            pkill -KILL -P "$pid" 2>/dev/null || true
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    if [[ $KEEP_TMP == 1 ]]; then
        log "runtime files kept in $RUN"
    else
        rm -rf "$RUN"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Polls until $url answers (any HTTP status) or the process dies.
wait_ready() {
    local name=$1 pid=$2 url=$3 logfile=$4 i
    for ((i = 0; i < 300; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$logfile" >&2 || true
            die "$name exited during startup"
        fi
        curl -s -o /dev/null --max-time 1 "$url" && return 0
        sleep 0.1
    done
    tail -n 20 "$logfile" >&2 || true
    die "$name did not become ready at $url within 30s"
}

# Starts an nginx instance from a template in bench/; sets NGINX_PID.
start_nginx() {
    local name=$1 core=$2 dir="$RUN/$1"
    mkdir -p "$dir"
    sed -e "s|@RUN@|$dir|g" \
        -e "s|@PORT_UP@|$PORT_UP|g" \
        -e "s|@PORT_UP_SSE@|$PORT_UP_SSE|g" \
        -e "s|@PORT_PROXY@|$PORT_PROXY|g" \
        -e "s|@PORT_PROXY_SSE@|$PORT_PROXY_SSE|g" \
        "$BENCH_DIR/nginx-$name.conf" >"$dir/nginx.conf"
    # -e keeps nginx away from the system error log before it reads the config.
    (pinned "$core" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf") \
        >"$dir/stdout.log" 2>&1 &
    NGINX_PID=$!
    STARTED+=("$NGINX_PID")
}

# The nginx master only supervises; the worker is the process doing the work.
nginx_workers() {
    local workers
    workers=$(pgrep -P "$1" | tr '\n' ' ')
    [[ -n $workers ]] || die "nginx master $1 has no worker"
    echo "$workers"
}

# Sum of utime+stime (clock ticks) over the given pids. For a multithreaded
# process /proc/PID/stat already totals every thread, including exited ones.
cpu_ticks() {
    local pid stat rest total=0
    local -a f
    for pid in "$@"; do
        stat=$(<"/proc/$pid/stat")
        rest=${stat##*) } # comm may contain spaces; fields resume after ')'
        read -r -a f <<<"$rest"
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}

# Peak RSS in kB (VmHWM), summed over the given pids.
peak_rss_kb() {
    local pid total=0 kb
    for pid in "$@"; do
        kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
        total=$((total + kb))
    done
    echo "$total"
}

# ------------------------------------------------------------------- services

log "runtime dir: $RUN"

start_nginx upstream "$CORE_LOAD"
UP_PID=$NGINX_PID
wait_ready "upstream nginx" "$UP_PID" "http://127.0.0.1:$PORT_UP/" "$RUN/upstream/error.log"
wait_ready "upstream nginx" "$UP_PID" "http://127.0.0.1:$PORT_UP_SSE/" "$RUN/upstream/error.log"

start_nginx proxy "$CORE_PROXY"
PROXY_PID=$NGINX_PID
wait_ready "proxy nginx" "$PROXY_PID" "http://127.0.0.1:$PORT_PROXY/" "$RUN/proxy/error.log"
wait_ready "proxy nginx" "$PROXY_PID" "http://127.0.0.1:$PORT_PROXY_SSE/" "$RUN/proxy/error.log"

start_gateway() { # name binary port [config]; sets GATEWAY_PID
    (RUST_LOG=warn pinned "$CORE_PROXY" "$2" serve \
        --config "${4:-$RUN/switchboard.yaml}" --listen "127.0.0.1:$3") \
        >"$RUN/$1.log" 2>&1 &
    GATEWAY_PID=$!
    STARTED+=("$GATEWAY_PID")
    for ((i = 0; ; i++)); do
        curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$3/health" && break
        if ! kill -0 "$GATEWAY_PID" 2>/dev/null || ((i >= 300)); then
            tail -n 20 "$RUN/$1.log" >&2 || true
            die "$1 did not become healthy on port $3"
        fi
        sleep 0.1
    done
}

GW_PID=
if [[ $SKIP_GATEWAY != 1 ]]; then
    cat >"$RUN/switchboard.yaml" <<EOF
server:
  listen: 127.0.0.1:$PORT_GW
providers:
  up: { kind: openai, base_url: "http://127.0.0.1:$PORT_UP/v1", api_key: "bench" }
  upsse: { kind: openai, base_url: "http://127.0.0.1:$PORT_UP_SSE/v1", api_key: "bench" }
models:
  - name: bench-json
    targets: [ { provider: up, model: gpt-4.1-mini } ]
  - name: bench-sse
    targets: [ { provider: upsse, model: gpt-4.1-mini } ]
EOF
    if [[ $LIMITS == 1 ]]; then
        cat >>"$RUN/switchboard.yaml" <<EOF
state: { data_dir: "$RUN/data" }
keys:
  - name: bench
    key: sk-bench
    limits:
      requests_per_minute: 100000000
      max_concurrent: 10000
      tokens_per_minute: 1000000000
      tokens_per_day: 100000000000
      budget_usd: { amount: 1000000, period: month }
EOF
    fi
    start_gateway switchboard "$SWITCHBOARD_BIN" "$PORT_GW"
    GW_PID=$GATEWAY_PID
fi

REDIS_GW_PID=
if [[ $REDIS == 1 ]]; then
    (pinned "$CORE_LOAD" redis-server --port "$PORT_REDIS" --bind 127.0.0.1 --save "" \
        --appendonly no --unixsocket "$RUN/redis.sock" --unixsocketperm 700) >"$RUN/redis.log" 2>&1 &
    STARTED+=("$!")
    for ((i = 0; i < 100; i++)); do
        redis-cli -p "$PORT_REDIS" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    sed -e "s|^state: .*|state: { data_dir: \"$RUN/data-redis\", redis: { url: \"redis://127.0.0.1:$PORT_REDIS\" } }|" \
        "$RUN/switchboard.yaml" >"$RUN/switchboard-redis.yaml"
    start_gateway redis "$SWITCHBOARD_BIN" "$PORT_GW_REDIS" "$RUN/switchboard-redis.yaml"
    REDIS_GW_PID=$GATEWAY_PID
fi

REDIS_UNIX_PID=
if [[ $REDIS_UNIX == 1 ]]; then
    sed -e "s|^state: .*|state: { data_dir: \"$RUN/data-redis-unix\", redis: { url: \"redis+unix://$RUN/redis.sock\", key_prefix: \"unix:\" } }|" \
        "$RUN/switchboard.yaml" >"$RUN/switchboard-redis-unix.yaml"
    start_gateway redis-unix "$SWITCHBOARD_BIN" "$PORT_GW_REDIS_UNIX" "$RUN/switchboard-redis-unix.yaml"
    REDIS_UNIX_PID=$GATEWAY_PID
fi

COMPARE_PID=
if [[ -n $COMPARE_BIN ]]; then
    [[ -f $RUN/switchboard.yaml ]] || die "COMPARE_BIN needs the gateway (SKIP_GATEWAY=0)"
    # A data directory of its own: two gateways never share one (its lock says so).
    sed -e '/^state: /d' "$RUN/switchboard.yaml" >"$RUN/switchboard-compare.yaml"
    if [[ $COMPARE_REDIS == 1 ]]; then
        [[ $REDIS == 1 ]] || die "COMPARE_REDIS=1 needs REDIS=1"
        echo "state: { data_dir: \"$RUN/data-compare\", redis: { url: \"redis://127.0.0.1:$PORT_REDIS\", key_prefix: \"compare:\" } }" \
            >>"$RUN/switchboard-compare.yaml"
    else
        echo "state: { data_dir: \"$RUN/data-compare\" }" >>"$RUN/switchboard-compare.yaml"
    fi
    start_gateway compare "$COMPARE_BIN" "$PORT_COMPARE" "$RUN/switchboard-compare.yaml"
    COMPARE_PID=$GATEWAY_PID
fi

FLOOR_PID=
if [[ $FLOOR == 1 ]]; then
    (pinned "$CORE_PROXY" "$FLOOR_BIN" "127.0.0.1:$PORT_FLOOR" "http://127.0.0.1:$PORT_UP" \
        "127.0.0.1:$PORT_FLOOR_SSE" "http://127.0.0.1:$PORT_UP_SSE") >"$RUN/floor.log" 2>&1 &
    FLOOR_PID=$!
    STARTED+=("$FLOOR_PID")
    wait_ready "axum-floor" "$FLOOR_PID" "http://127.0.0.1:$PORT_FLOOR/" "$RUN/floor.log"
fi

# --------------------------------------------------------------- sanity checks

body_for() { # mode
    if [[ $1 == sse ]]; then
        echo '{"model":"bench-sse","stream":true,"messages":[{"role":"user","content":"Say hello"}]}'
    else
        echo '{"model":"bench-json","messages":[{"role":"user","content":"Say hello"}]}'
    fi
}

url_for() { # target mode
    local port
    case $1/$2 in
    direct/json) port=$PORT_UP ;;
    direct/sse) port=$PORT_UP_SSE ;;
    nginx/json) port=$PORT_PROXY ;;
    nginx/sse) port=$PORT_PROXY_SSE ;;
    switchboard/*) port=$PORT_GW ;;
    compare/*) port=$PORT_COMPARE ;;
    redis/*) port=$PORT_GW_REDIS ;;
    redis-unix/*) port=$PORT_GW_REDIS_UNIX ;;
    axum-floor/json) port=$PORT_FLOOR ;;
    axum-floor/sse) port=$PORT_FLOOR_SSE ;;
    esac
    echo "http://127.0.0.1:$port/v1/chat/completions"
}

# One request per target before loading it, so a misconfigured hop fails
# loudly instead of producing a fast column of 404s.
check_target() { # target mode
    local out
    out=$(curl -sS --fail-with-body --max-time 10 -H 'Content-Type: application/json' \
        -H "Authorization: Bearer sk-bench" \
        --data "$(body_for "$2")" "$(url_for "$1" "$2")") ||
        die "$1 ($2) request failed: $out"
    if [[ $2 == sse ]]; then
        [[ $out == *'"chat.completion.chunk"'* && $out == *'data: [DONE]'* ]] ||
            die "$1 ($2) did not return an SSE completion stream: $out"
    else
        [[ $out == *'"chat.completion"'* && $out == *'"usage"'* ]] ||
            die "$1 ($2) did not return a chat completion: $out"
    fi
}

TARGETS=(direct nginx)
[[ $FLOOR != 1 ]] || TARGETS+=(axum-floor)
[[ $SKIP_GATEWAY == 1 ]] || TARGETS+=(switchboard)
[[ -z $COMPARE_BIN ]] || TARGETS+=(compare)
[[ $REDIS != 1 ]] || TARGETS+=(redis)
[[ $REDIS_UNIX != 1 ]] || TARGETS+=(redis-unix)
for t in "${TARGETS[@]}"; do
    check_target "$t" json
    check_target "$t" sse
done

# --------------------------------------------------------------------- runs

on_load_core() { (pinned "$CORE_LOAD" "$@"); }

# Fills R[...] with the WRK_RESULT fields post.lua prints.
declare -A R
run_wrk() { # url mode conns seconds logfile
    local model=bench-json stream=0 line kv
    local -a parts
    if [[ $2 == sse ]]; then model=bench-sse stream=1; fi
    BENCH_MODEL=$model BENCH_STREAM=$stream \
        on_load_core wrk -t1 -c"$3" -d"$4s" --timeout 10s --latency \
        -s "$BENCH_DIR/post.lua" "$1" >"$5" 2>&1 ||
        { cat "$5" >&2; die "wrk failed against $1"; }
    line=$(grep '^WRK_RESULT ' "$5") || { cat "$5" >&2; die "no WRK_RESULT in wrk output"; }
    read -r -a parts <<<"${line#WRK_RESULT }"
    R=()
    for kv in "${parts[@]}"; do R[${kv%%=*}]=${kv#*=}; done
}

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS=$ROUNDS is not a positive number"

declare -A DIRECT_P50 CPU_PER_REQ ADDED_ALL CPU_ALL
ROWS=()
for mode in json sse; do
    for conns in $CONNECTIONS; do
        # A VM's speed drifts over minutes; a round measures every target back to back, so each
        # round compares like with like and the median over rounds is not one slow phase.
        for ((round = 1; round <= ROUNDS; round++)); do
            for target in "${TARGETS[@]}"; do
                url=$(url_for "$target" "$mode")
                pids=()
                case $target in
                nginx) read -r -a pids <<<"$(nginx_workers "$PROXY_PID")" ;;
                switchboard) pids=("$GW_PID") ;;
                compare) pids=("$COMPARE_PID") ;;
                redis) pids=("$REDIS_GW_PID") ;;
                redis-unix) pids=("$REDIS_UNIX_PID") ;;
                axum-floor) pids=("$FLOOR_PID") ;;
                esac

                log "$mode c=$conns $target: round $round/$ROUNDS, warmup ${WARMUP}s, run ${DURATION}s"
                if ((WARMUP > 0)); then
                    run_wrk "$url" "$mode" "$conns" "$WARMUP" "$RUN/wrk-$mode-$conns-$target-r$round-warmup.log"
                fi
                before=0
                ((${#pids[@]} == 0)) || before=$(cpu_ticks "${pids[@]}")
                run_wrk "$url" "$mode" "$conns" "$DURATION" "$RUN/wrk-$mode-$conns-$target-r$round.log"
                after=0
                ((${#pids[@]} == 0)) || after=$(cpu_ticks "${pids[@]}")

                reqs=${R[requests]}
                ((reqs > 0)) || die "$target ($mode, c=$conns) completed no requests"
                errs=$((R[err_connect] + R[err_read] + R[err_write] + R[err_status] + R[err_timeout]))
                ((errs == 0)) || log "warning: $target ($mode, c=$conns): $errs errors (status: ${R[err_status]})"

                rps=$(awk -v n="$reqs" -v us="${R[duration_us]}" 'BEGIN { printf "%.0f", n / (us / 1e6) }')
                p50=${R[p50_us]}
                p99=${R[p99_us]}
                if [[ $target == direct ]]; then
                    DIRECT_P50[$mode/$conns]=$p50
                    added=-
                    cpu=-
                    rss=-
                else
                    added=$((p50 - DIRECT_P50[$mode/$conns]))
                    cpu_us=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$reqs" \
                        'BEGIN { printf "%.2f", t / hz / n * 1e6 }')
                    CPU_PER_REQ[$target/$mode/$conns]=$cpu_us
                    ADDED_ALL[$target/$mode/$conns]+="$added "
                    CPU_ALL[$target/$mode/$conns]+="$cpu_us "
                    cpu=$cpu_us
                    rss=$(awk -v kb="$(peak_rss_kb "${pids[@]}")" 'BEGIN { printf "%.1f", kb / 1024 }')
                fi
                ROWS+=("$mode|$conns|$round|$target|$rps|$p50|$p99|$added|$cpu|$rss|$errs")
            done
        done
    done
done

# Median of the numbers given as arguments (the mean of the middle two of an even count).
median() {
    printf '%s\n' "$@" | sort -g |
        awk '{ v[NR] = $1 } END { m = (v[int((NR + 1) / 2)] + v[int(NR / 2) + 1]) / 2; print (m == int(m) ? m : sprintf("%.2f", m)) }'
}

# -------------------------------------------------------------------- report

echo
printf 'Overhead benchmark: %ss per run, wrk 1 thread, proxy on core %s, wrk+upstream on core %s\n' \
    "$DURATION" "$CORE_PROXY" "$CORE_LOAD"
echo
fmt_row='%-5s %5s %5s  %-11s %9s %9s %9s %10s %12s %11s %6s\n'
# shellcheck disable=SC2059 # the format is a constant defined just above
printf "$fmt_row" mode conns round target 'req/s' 'p50 us' 'p99 us' '+p50 us' 'cpu/req us' 'peak RSS MiB' errors
for row in "${ROWS[@]}"; do
    IFS='|' read -r -a c <<<"$row"
    # shellcheck disable=SC2059
    printf "$fmt_row" "${c[@]}"
done

if ((ROUNDS > 1)); then
    echo
    echo "Medians over $ROUNDS rounds:"
    fmt_median='  %-5s c=%-3s %-11s +p50 %6s us   cpu/req %8s us\n'
    for mode in json sse; do
        for conns in $CONNECTIONS; do
            for target in "${TARGETS[@]}"; do
                [[ $target != direct ]] || continue
                key=$target/$mode/$conns
                # Word splitting of the space-separated lists is the point here.
                # shellcheck disable=SC2086,SC2059
                printf "$fmt_median" "$mode" "$conns" "$target" \
                    "$(median ${ADDED_ALL[$key]})" "$(median ${CPU_ALL[$key]})"
                # shellcheck disable=SC2086
                CPU_PER_REQ[$key]=$(median ${CPU_ALL[$key]})
            done
        done
    done
fi

cpu_ratios() { # target base
    echo
    if ((ROUNDS > 1)); then
        echo "CPU per request, $1 / $2 (medians):"
    else
        echo "CPU per request, $1 / $2:"
    fi
    for mode in json sse; do
        for conns in $CONNECTIONS; do
            a=${CPU_PER_REQ[$1/$mode/$conns]}
            b=${CPU_PER_REQ[$2/$mode/$conns]}
            ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }')
            printf '  %-5s c=%-3s %s\n' "$mode" "$conns" "$ratio"
        done
    done
}
[[ $SKIP_GATEWAY == 1 ]] || cpu_ratios switchboard nginx
if [[ $COMPARE_REDIS == 1 ]]; then
    cpu_ratios compare redis
else
    [[ -z $COMPARE_BIN ]] || cpu_ratios compare switchboard
fi
[[ $REDIS != 1 ]] || cpu_ratios redis switchboard
[[ $REDIS_UNIX != 1 ]] || cpu_ratios redis-unix switchboard
echo
echo 'p50/p99 from wrk --latency; +p50 is over direct at the same mode and connections.'
echo 'cpu/req is utime+stime of the proxy process (nginx worker / switchboard) over the run,'
echo "divided by completed requests (clock tick = $((1000000 / CLK_TCK)) us). Peak RSS is VmHWM so far."
