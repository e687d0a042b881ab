# Shared definitions of the local stack scripts. Sourced, not run.
#
# Layout: three datacenters dc1..dc3 on 127.0.0.1. Each has one log replica
# (together one Raft cluster), one API server, and HashSP and HashPO views
# with PARTITIONS partitions x REPLICAS replicas, so each DC holds a full copy.
# Ports from BASE: log Raft BASE+dc, log gRPC BASE+100+dc, API BASE+200+dc,
# views BASE+300+(dc-1)*100+n.
STACK="${AKUTAN_STACK_DIR:-${ROOT}/.localstack}"
BIN="${AKUTAN_BIN:-${ROOT}/bin}"
BASE="${AKUTAN_BASE_PORT:-17000}"
PARTITIONS="${AKUTAN_PARTITIONS:-2}"
REPLICAS="${AKUTAN_REPLICAS:-1}"
DCS="1 2 3"

log_raft_addr() { echo "127.0.0.1:$((BASE + $1))"; }
log_grpc_addr() { echo "127.0.0.1:$((BASE + 100 + $1))"; }
api_addr() { echo "127.0.0.1:$((BASE + 200 + $1))"; }

join() { local IFS=,; echo "$*"; }

log_grpc_addrs() { local a=() i; for i in $DCS; do a+=("$(log_grpc_addr "$i")"); done; join "${a[@]}"; }
log_peers() { local a=() i; for i in $DCS; do a+=("log-dc${i}=$(log_raft_addr "$i")"); done; join "${a[@]}"; }
api_addrs() { local a=() i; for i in $DCS; do a+=("$(api_addr "$i")"); done; join "${a[@]}"; }

# views_of DC: lines "name space start end addr" for every view of the DC.
views_of() {
  local dc="$1" n=0 space p r start end step
  step=$(( (1 << 62) / PARTITIONS * 4 ))
  for space in sp po; do
    for ((p = 0; p < PARTITIONS; p++)); do
      start=$(printf '0x%x' $(( p * step )))
      end=$(printf '0x%x' $(( (p + 1) * step )))
      (( p == PARTITIONS - 1 )) && end=max
      for ((r = 0; r < REPLICAS; r++)); do
        n=$((n + 1))
        echo "view-dc${dc}-${space}-p${p}-r${r} ${space} ${start} ${end} 127.0.0.1:$((BASE + 300 + (dc - 1) * 100 + n))"
      done
    done
  done
}

all_view_addrs() {
  local a=() dc name space start end addr
  for dc in $DCS; do
    while read -r name space start end addr; do a+=("$addr"); done < <(views_of "$dc")
  done
  join "${a[@]}"
}

# running NAME: whether the process recorded under NAME is alive.
running() {
  local pidfile="${STACK}/pids/$1.pid"
  [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# spawn NAME CMD...: start CMD in the background unless NAME runs.
spawn() {
  local name="$1"
  shift
  if running "$name"; then
    echo "${name} already running (pid $(cat "${STACK}/pids/${name}.pid"))"
    return
  fi
  nohup "$@" >>"${STACK}/logs/${name}.log" 2>&1 &
  echo $! >"${STACK}/pids/${name}.pid"
  echo "started ${name} (pid $!)"
}

start_log() {
  local i="$1" name="log-dc$1"
  mkdir -p "${STACK}/dc${i}/${name}"
  spawn "$name" "${BIN}/akutan-log" --id "$name" \
    --raft-addr "$(log_raft_addr "$i")" --grpc-addr "$(log_grpc_addr "$i")" \
    --data-dir "${STACK}/dc${i}/${name}" --bootstrap --peers "$(log_peers)"
}

start_views() {
  local dc="$1" name space start end addr
  while read -r name space start end addr; do
    mkdir -p "${STACK}/dc${dc}/${name}"
    spawn "$name" "${BIN}/akutan-view" --space "$space" --range-start "$start" --range-end "$end" \
      --data-dir "${STACK}/dc${dc}/${name}" --log "$(log_grpc_addrs)" --listen "$addr" \
      --cache-bytes $((32 << 20)) --log-level warn
  done < <(views_of "$dc")
}

start_api() {
  local dc="$1" peers=() i
  for i in $DCS; do [[ "$i" == "$dc" ]] || peers+=("$(api_addr "$i")"); done
  spawn "api-dc${dc}" "${BIN}/akutan-api" --listen "$(api_addr "$dc")" --log "$(log_grpc_addrs)" \
    --views "$(all_view_addrs)" --peers "$(join "${peers[@]}")" --hedge-floor 2ms
}

start_dc() {
  start_log "$1"
  start_views "$1"
  start_api "$1"
}

stop_dc() {
  local dc="$1" name rest
  stop "api-dc${dc}"
  while read -r name rest; do stop "$name"; done < <(views_of "$dc")
  stop "log-dc${dc}"
}

# stop NAME: SIGTERM the process recorded under NAME, then SIGKILL after 10s.
stop() {
  local name="$1" pidfile="${STACK}/pids/$1.pid" pid
  [[ -f "$pidfile" ]] || return 0
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    echo "stopped ${name} (pid ${pid})"
  fi
  rm -f "$pidfile"
}
