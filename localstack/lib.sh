# Shared definitions of the local stack scripts. Sourced, not run.
#
# Layout: three datacenters dc1..dc3 on 127.0.0.1. Each has one log replica
# (together one Raft cluster), one API server, and HashSP and HashPO views
# with PARTITIONS partitions x REPLICAS replicas, so each DC holds a full copy.
# Ports from BASE: log Raft BASE+dc, log gRPC BASE+100+dc, API BASE+200+dc,
# views BASE+300+(dc-1)*100+n, MinIO BASE+900 (console BASE+901). Every
# server's HTTP listener (--http-addr: /metrics, /healthz, /readyz) is its
# gRPC port + 1000 (log_http_addr, api_http_addr, view_http_addr).
#
# Object storage: one MinIO server (the bucket every DC archives and
# checkpoints to; in the cloud each region has its own replicated bucket).
# AKUTAN_STORE replaces it with any store URL (a directory path, or
# s3://bucket/prefix?endpoint=...), and then no MinIO is started.
STACK="${AKUTAN_STACK_DIR:-${ROOT}/.localstack}"
BIN="${AKUTAN_BIN:-${ROOT}/bin}"
BASE="${AKUTAN_BASE_PORT:-17000}"
PARTITIONS="${AKUTAN_PARTITIONS:-2}"
REPLICAS="${AKUTAN_REPLICAS:-1}"
DCS="1 2 3"
MINIO="${AKUTAN_MINIO:-${ROOT}/.tools/bin/minio}"
MINIO_ADDR="127.0.0.1:$((BASE + 900))"
BUCKET=akutan
# Credentials of the local MinIO; every process reads them through the
# standard AWS environment variables.
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-akutan-local}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-akutan-local-secret}"
export AWS_REGION="${AWS_REGION:-us-east-1}"

# store_url: where the stack's history lives. A restored stack records its
# own (a new timeline) in ${STACK}/store.url.
store_url() {
  if [[ -f "${STACK}/store.url" ]]; then
    cat "${STACK}/store.url"
  elif [[ -n "${AKUTAN_STORE:-}" ]]; then
    echo "${AKUTAN_STORE}"
  else
    echo "s3://${BUCKET}/stack?endpoint=http://${MINIO_ADDR}&region=${AWS_REGION}&path_style=true"
  fi
}

log_raft_addr() { echo "127.0.0.1:$((BASE + $1))"; }
log_grpc_addr() { echo "127.0.0.1:$((BASE + 100 + $1))"; }
api_addr() { echo "127.0.0.1:$((BASE + 200 + $1))"; }
# http_of HOST:PORT: the same host, port + 1000 (the HTTP listener).
http_of() { echo "${1%:*}:$(( ${1##*:} + 1000 ))"; }
log_http_addr() { http_of "$(log_grpc_addr "$1")"; }
api_http_addr() { http_of "$(api_addr "$1")"; }
view_http_addr() { http_of "$1"; }

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

# debug_flag: with AKUTAN_DEBUG set, every server also serves Go profiles
# under /debug/pprof/ on its HTTP listener.
debug_flag() { [[ -n "${AKUTAN_DEBUG:-}" ]] && echo "--pprof"; true; }

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

# start_minio: the local object store, unless AKUTAN_STORE points elsewhere.
# Waits until it is ready and the bucket exists.
start_minio() {
  [[ -n "${AKUTAN_STORE:-}" ]] && return 0
  mkdir -p "${STACK}/minio"
  MINIO_ROOT_USER="${AWS_ACCESS_KEY_ID}" MINIO_ROOT_PASSWORD="${AWS_SECRET_ACCESS_KEY}" \
    MINIO_BROWSER=off spawn minio "${MINIO}" server "${STACK}/minio" \
    --address "${MINIO_ADDR}" --console-address "127.0.0.1:$((BASE + 901))" --quiet
  for _ in $(seq 1 150); do
    "${BIN}/akutan" backup init --store "$(store_url)" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  "${BIN}/akutan" backup init --store "$(store_url)"
}

# start_log DC: the DC's log replica. In a restored stack (restore.sh) only
# dc1's replica holds the log; the others start empty and join it
# (join_restored_logs), rather than bootstrapping a cluster of their own.
start_log() {
  local i="$1" name="log-dc$1" boot=(--bootstrap --peers "$(log_peers)")
  mkdir -p "${STACK}/dc${i}/${name}"
  [[ -f "${STACK}/restored" ]] && boot=()
  spawn "$name" "${BIN}/akutan-log" --id "$name" \
    --raft-addr "$(log_raft_addr "$i")" --grpc-addr "$(log_grpc_addr "$i")" \
    --data-dir "${STACK}/dc${i}/${name}" "${boot[@]}" --archive "$(store_url)" \
    --http-addr "$(log_http_addr "$i")" --log-level warn $(debug_flag)
}

# join_restored_logs: add the log replicas of a restored stack that are not
# yet members as voters of dc1's.
join_restored_logs() {
  [[ -f "${STACK}/restored" ]] || return 0
  local i members try
  for i in $DCS; do
    for try in $(seq 1 150); do
      members="$("${BIN}/akutan" log info --log "$(log_grpc_addr 1)" 2>/dev/null || true)"
      grep -q "^log-dc${i} " <<<"$members" && break
      # dc1's replica elects itself first; until then add-voter is refused.
      if grep -q "^leader: log-dc1 " <<<"$members" &&
        "${BIN}/akutan" log add-voter --log "$(log_grpc_addr 1)" "log-dc${i}" "$(log_raft_addr "$i")" "$(log_grpc_addr "$i")"; then
        break
      fi
      (( try == 150 )) && { echo "log-dc${i} could not join the restored log" >&2; return 1; }
      sleep 0.2
    done
  done
}

start_views() {
  local dc="$1" name space start end addr
  while read -r name space start end addr; do
    mkdir -p "${STACK}/dc${dc}/${name}"
    spawn "$name" "${BIN}/akutan-view" --space "$space" --range-start "$start" --range-end "$end" \
      --data-dir "${STACK}/dc${dc}/${name}" --log "$(log_grpc_addrs)" --listen "$addr" \
      --cache-bytes $((32 << 20)) --log-level warn \
      --store "$(store_url)" --cluster "dc${dc}" --checkpoint-interval "${AKUTAN_CHECKPOINT_INTERVAL:-60s}" \
      --http-addr "$(view_http_addr "$addr")" $(debug_flag)
  done < <(views_of "$dc")
}

start_api() {
  local dc="$1" peers=() i
  for i in $DCS; do [[ "$i" == "$dc" ]] || peers+=("$(api_addr "$i")"); done
  spawn "api-dc${dc}" "${BIN}/akutan-api" --listen "$(api_addr "$dc")" --log "$(log_grpc_addrs)" \
    --views "$(all_view_addrs)" --peers "$(join "${peers[@]}")" --hedge-floor 2ms \
    --dc "dc${dc}" --http-addr "$(api_http_addr "$dc")" $(debug_flag)
}

# start_truncator: the truncation coordinator, which discards the log's
# prefix once it is archived and every point has a checkpoint above it.
start_truncator() {
  spawn truncator "${BIN}/akutan" log truncate --every "${AKUTAN_TRUNCATE_EVERY:-30s}" \
    --log "$(log_grpc_addrs)" --store "$(store_url)" --clusters dc1,dc2,dc3
}

# start_pruner: retention and garbage collection of the bucket.
start_pruner() {
  spawn pruner "${BIN}/akutan" backup prune --every "${AKUTAN_PRUNE_EVERY:-10m}" \
    --keep "${AKUTAN_KEEP_CHECKPOINTS:-3}" --grace "${AKUTAN_PRUNE_GRACE:-1h}" --store "$(store_url)"
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
