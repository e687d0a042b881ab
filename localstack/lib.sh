# Shared definitions of the local stack scripts. Sourced, not run.
STACK="${AKUTAN_STACK_DIR:-${ROOT}/.localstack}"
BIN="${AKUTAN_BIN:-${ROOT}/bin}"
BASE="${AKUTAN_BASE_PORT:-17000}"

log_raft_addr() { echo "127.0.0.1:$((BASE + $1))"; }
log_grpc_addr() { echo "127.0.0.1:$((BASE + 100 + $1))"; }

log_grpc_addrs() {
  local out="" i
  for i in 1 2 3; do out="${out:+${out},}$(log_grpc_addr "$i")"; done
  echo "$out"
}

log_peers() {
  local out="" i
  for i in 1 2 3; do out="${out:+${out},}log-dc${i}=$(log_raft_addr "$i")"; done
  echo "$out"
}

# running NAME: whether the process recorded under NAME is alive.
running() {
  local pidfile="${STACK}/pids/$1.pid"
  [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# start_log I: start the log replica of dc I unless it runs.
start_log() {
  local i="$1" name="log-dc$1"
  if running "$name"; then
    echo "${name} already running (pid $(cat "${STACK}/pids/${name}.pid"))"
    return
  fi
  mkdir -p "${STACK}/dc${i}/${name}"
  nohup "${BIN}/akutan-log" --id "$name" \
    --raft-addr "$(log_raft_addr "$i")" --grpc-addr "$(log_grpc_addr "$i")" \
    --data-dir "${STACK}/dc${i}/${name}" --bootstrap --peers "$(log_peers)" \
    >>"${STACK}/logs/${name}.log" 2>&1 &
  echo $! >"${STACK}/pids/${name}.pid"
  echo "started ${name} (pid $!), raft $(log_raft_addr "$i"), grpc $(log_grpc_addr "$i")"
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
