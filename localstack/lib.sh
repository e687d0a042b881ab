# Shared definitions of the local stack scripts. Sourced, not run.
#
# Layout: the topology file (localstack/topology.yaml, or AKUTAN_TOPOLOGY;
# format in infra/topology) names the datacenters, each one Akutan cluster
# on 127.0.0.1, and their log voters (together one Raft log), API servers
# and HashSP and HashPO views. load_topology reads it once through
# `akutan topology servers`, which derives the ports the file leaves out
# from its ports.base (AKUTAN_BASE_PORT overrides it; AKUTAN_PARTITIONS and
# AKUTAN_REPLICAS override every space's partitions and replicas). The
# default: dc1..dc3, log Raft BASE+dc, log gRPC BASE+100+dc, API BASE+200+dc,
# views BASE+300+(dc-1)*100+n. MinIO listens on BASE+900 (console BASE+901)
# with BASE = AKUTAN_BASE_PORT or 17000. Every server's HTTP listener
# (--http-addr: /metrics, /healthz, /readyz) is its gRPC port + 1000
# (log_http_addr, api_http_addr, view_http_addr).
#
# Each DC is a cluster: its API servers read its own views (--views), the
# other DCs' views only as the counted fallback (--fallback-views), and
# judge it with its own API servers as peers; its views tail the log from
# its own log voter first. DCs are numbered by their place in the file: DCS
# is "1 2 ... N", dc_name I names one, and the functions below that take a
# DC take that number (as prometheus.sh does).
#
# Object storage: one MinIO server (the bucket every DC archives and
# checkpoints to; in the cloud each region has its own replicated bucket).
# AKUTAN_STORE replaces it with any store URL (a directory path, or
# s3://bucket/prefix?endpoint=...), and then no MinIO is started.
STACK="${AKUTAN_STACK_DIR:-${ROOT}/.localstack}"
BIN="${AKUTAN_BIN:-${ROOT}/bin}"
BASE="${AKUTAN_BASE_PORT:-17000}"
TOPOLOGY="${AKUTAN_TOPOLOGY:-${ROOT}/localstack/topology.yaml}"
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

# load_topology: read the topology file into SERVERS (the tab-separated
# lines of `akutan topology servers`: ROLE DC NAME ADDR RAFT SPACE START
# END), DC_NAMES and DCS. It needs ${BIN}/akutan (make build).
load_topology() {
  local args=(topology servers -f "$TOPOLOGY")
  [[ -n "${AKUTAN_BASE_PORT:-}" ]] && args+=(--base-port "$AKUTAN_BASE_PORT")
  [[ -n "${AKUTAN_PARTITIONS:-}" ]] && args+=(--partitions "$AKUTAN_PARTITIONS")
  [[ -n "${AKUTAN_REPLICAS:-}" ]] && args+=(--replicas "$AKUTAN_REPLICAS")
  SERVERS="$("${BIN}/akutan" "${args[@]}")" || { echo "cannot read the topology ${TOPOLOGY}" >&2; return 1; }
  mapfile -t DC_NAMES < <(awk -F'\t' '!seen[$2]++ { print $2 }' <<<"$SERVERS")
  DCS="$(seq -s ' ' 1 "${#DC_NAMES[@]}")"
  FIRST_LOG="$(servers log | sed -n 1p)"
}

# servers ROLE [DC]: the SERVERS lines of one role, of one DC (a number) or
# of all.
servers() {
  local dc=""
  [[ -n "${2:-}" ]] && dc="$(dc_name "$2")"
  awk -F'\t' -v role="$1" -v dc="$dc" '$1 == role && (dc == "" || $2 == dc)' <<<"$SERVERS"
}

# field N: the Nth tab-separated field of each line of stdin.
field() { cut -f "$1"; }

dc_name() { echo "${DC_NAMES[$(($1 - 1))]}"; }

# dc_index NAME: the DC's number, or nothing when the file has no such DC.
dc_index() {
  local i
  for i in $DCS; do [[ "$(dc_name "$i")" == "$1" ]] && echo "$i"; done
  true
}

# other_dcs DC: every DC number but DC.
other_dcs() { local i; for i in $DCS; do [[ "$i" == "$1" ]] || echo "$i"; done; }

# The first log voter's and API server's addresses of DC.
log_raft_addr() { servers log "$1" | sed -n 1p | field 5; }
log_grpc_addr() { servers log "$1" | sed -n 1p | field 4; }
api_addr() { servers api "$1" | sed -n 1p | field 4; }
# http_of HOST:PORT: the same host, port + 1000 (the HTTP listener).
http_of() { echo "${1%:*}:$(( ${1##*:} + 1000 ))"; }
log_http_addr() { http_of "$(log_grpc_addr "$1")"; }
api_http_addr() { http_of "$(api_addr "$1")"; }
view_http_addr() { http_of "$1"; }

# join: the lines of stdin (or the arguments), comma-separated.
join() {
  if (($#)); then local IFS=,; echo "$*"; else paste -sd, -; fi
}

log_grpc_addrs() { servers log | field 4 | join; }
api_addrs() { servers api | field 4 | join; }
log_peers() { servers log | awk -F'\t' '{ print $3 "=" $5 }' | join; }
# log_addrs_from DC: every log voter's gRPC address, DC's own first (a
# reader prefers the first).
log_addrs_from() { { servers log "$1"; local i; for i in $(other_dcs "$1"); do servers log "$i"; done; } | field 4 | join; }
# view_addrs DC...: the views of those DCs.
view_addrs() { local i; for i in "$@"; do servers view "$i"; done | field 4 | join; }

# views_of DC: lines "name space start end addr" for every view of the DC.
views_of() { servers view "$1" | awk -F'\t' '{ print $3, $6, $7, $8, $4 }'; }

# clusters: the names of the DCs with views, comma-separated.
clusters() { servers view | field 2 | uniq | join; }

# summary DC: what the DC's cluster has, as the verdicts count it.
summary() {
  local views apis
  apis="$(servers api "$1" | wc -l)"
  (( apis > 0 )) || { echo "$(dc_name "$1"): log voters only"; return; }
  # The fewest views of one range in the DC.
  views="$(servers view "$1" | awk -F'\t' '{ n[$6 " " $7 " " $8]++ } END { m = -1; for (k in n) if (m < 0 || n[k] < m) m = n[k]; print m }')"
  echo "$(dc_name "$1"): ${views} view(s) per range, ${apis} API server(s)"
}

# running NAME: whether the process recorded under NAME is alive.
running() {
  local pidfile="${STACK}/pids/$1.pid"
  [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# bin_of NAME: the directory NAME's binaries start from: the one ctl.sh bin
# recorded for it (an upgrade, or a rollback), else ${BIN}.
bin_of() {
  if [[ -f "${STACK}/binaries/$1" ]]; then cat "${STACK}/binaries/$1"; else echo "${BIN}"; fi
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

# start_log DC: the DC's log voters. In a restored stack (restore.sh) only
# the first voter of the file holds the log; the others start empty and
# join it (join_restored_logs), rather than bootstrapping a log of their
# own.
start_log() {
  local name
  for name in $(servers log "$1" | field 3); do start_log_server "$name"; done
}

# start_log_server NAME [join]: one log voter. With join it starts without
# --bootstrap, so a replica on an empty disk waits to be added as a voter
# (ctl.sh join, the replace procedure) instead of founding a log of its own.
start_log_server() {
  local line dc name addr raft boot=(--bootstrap --peers "$(log_peers)")
  line="$(server_line "$1")" || return 1
  IFS=$'\t' read -r _ dc name addr raft _ <<<"$line"
  [[ -f "${STACK}/restored" || "${2:-}" == join ]] && boot=()
  mkdir -p "${STACK}/${dc}/${name}"
  spawn "$name" "$(bin_of "$name")/akutan-log" --id "$name" \
    --raft-addr "$raft" --grpc-addr "$addr" \
    --data-dir "${STACK}/${dc}/${name}" "${boot[@]}" --archive "$(store_url)" \
    --http-addr "$(http_of "$addr")" --log-level warn $(debug_flag)
}

# server_line NAME: the SERVERS line of the server NAME; fails when the
# topology has none.
server_line() {
  local line
  line="$(awk -F'\t' -v n="$1" '$3 == n' <<<"$SERVERS")"
  [[ -n "$line" ]] || { echo "the topology has no server ${1}" >&2; return 1; }
  echo "$line"
}

# join_restored_logs: add the log voters of a restored stack that are not
# yet members as voters of the first one's.
join_restored_logs() {
  [[ -f "${STACK}/restored" ]] || return 0
  local first name addr raft members try
  first="$(field 4 <<<"$FIRST_LOG")"
  while IFS=$'\t' read -r _ _ name addr raft _; do
    for try in $(seq 1 150); do
      members="$("${BIN}/akutan" log info --log "$first" 2>/dev/null || true)"
      grep -q "^${name} " <<<"$members" && break
      # The first voter elects itself first; until then add-voter is refused.
      if grep -q "^leader: $(field 3 <<<"$FIRST_LOG") " <<<"$members" &&
        "${BIN}/akutan" log add-voter --log "$first" "$name" "$raft" "$addr"; then
        break
      fi
      (( try == 150 )) && { echo "${name} could not join the restored log" >&2; return 1; }
      sleep 0.2
    done
  done < <(servers log)
}

start_views() {
  local name
  for name in $(servers view "$1" | field 3); do start_view_server "$name"; done
}

# start_view_server NAME [LIKE ADDR]: one view of the topology; or, with
# LIKE and ADDR, an extra view NAME of LIKE's DC, space and range at ADDR
# (the control plane's temporary view, infra/cluster). Its data dir is
# ${STACK}/DC/NAME; an empty one boots from the bucket.
start_view_server() {
  local line dc name addr space start end
  line="$(server_line "${2:-$1}")" || return 1
  IFS=$'\t' read -r _ dc name addr _ space start end <<<"$line"
  [[ -n "${2:-}" ]] && name="$1" addr="$3"
  mkdir -p "${STACK}/${dc}/${name}"
  spawn "$name" "$(bin_of "$name")/akutan-view" --space "$space" --range-start "$start" --range-end "$end" \
    --data-dir "${STACK}/${dc}/${name}" --log "$(log_addrs_from "$(dc_index "$dc")")" --listen "$addr" \
    --cache-bytes $((32 << 20)) --log-level warn \
    --store "$(store_url)" --cluster "$dc" --checkpoint-interval "${AKUTAN_CHECKPOINT_INTERVAL:-60s}" \
    --http-addr "$(view_http_addr "$addr")" $(debug_flag)
}

# views_file DC / fallback_file DC: the files of view addresses the DC's
# API servers read (--views-file, --fallback-views-file), re-read every
# second: the DC's own views, and the other DCs' for the fallback. They are
# written from the topology when missing; the control plane (ctl.sh views)
# adds and retires views in them, and down.sh deletes them.
views_file() { echo "${STACK}/views/$(dc_name "$1").views"; }
fallback_file() { echo "${STACK}/views/$(dc_name "$1").fallback"; }

write_views_files() {
  mkdir -p "${STACK}/views"
  [[ -f "$(views_file "$1")" ]] || view_addrs "$1" | tr , '\n' >"$(views_file "$1")"
  [[ -f "$(fallback_file "$1")" ]] || view_addrs $(other_dcs "$1") | tr , '\n' >"$(fallback_file "$1")"
}

# start_api DC: the DC's API servers. Each reads the DC's own views, the
# other DCs' only as a fallback, and counts the DC's other API servers as
# its peers. An akutan-api without --fallback-views is given every view.
start_api() {
  local name
  for name in $(servers api "$1" | field 3); do start_api_server "$name"; done
}

# start_api_server NAME [LIKE ADDR]: one API server of the topology; or,
# with LIKE and ADDR, an extra API server NAME of LIKE's DC at ADDR (the
# control plane's temporary one), whose peers are the DC's API servers.
start_api_server() {
  local line dc name addr peers views d
  line="$(server_line "${2:-$1}")" || return 1
  IFS=$'\t' read -r _ dc name addr _ <<<"$line"
  [[ -n "${2:-}" ]] && name="$1" addr="$3"
  d="$(dc_index "$dc")"
  # The views files, not static lists: the control plane publishes and
  # retires views there. (No probing of akutan-api --help: under pipefail
  # `--help | grep -q` could fail on SIGPIPE and silently fall back to a
  # static list, so a published view was never seen.)
  write_views_files "$d"
  views=(--views-file "$(views_file "$d")" --fallback-views-file "$(fallback_file "$d")" --resolve-interval 1s)
  peers="$(servers api "$d" | awk -F'\t' -v me="$addr" '$4 != me { print $4 }' | join)"
  spawn "$name" "$(bin_of "$name")/akutan-api" --listen "$addr" --log "$(log_addrs_from "$d")" \
    "${views[@]}" --peers "$peers" --hedge-floor 2ms \
    --dc "$dc" --http-addr "$(http_of "$addr")" $(debug_flag)
}

# register_clusters: the topology's DCs with views, critical, in the
# bucket's cluster registry (idempotent), which the truncator reads.
register_clusters() {
  local dc
  for dc in $(clusters | tr , ' '); do
    "${BIN}/akutan" backup clusters add "$dc" --store "$(store_url)" >/dev/null
  done
}

# start_truncator: the truncation coordinator, which discards the log's
# prefix once it is archived and every critical cluster (the registry's)
# has a checkpoint above it at every point.
start_truncator() {
  spawn truncator "${BIN}/akutan" log truncate --every "${AKUTAN_TRUNCATE_EVERY:-30s}" \
    --log "$(log_grpc_addrs)" --store "$(store_url)"
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
  local role name
  for role in api view log; do
    for name in $(servers "$role" "$1" | field 3); do stop "$name"; done
  done
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
