#!/usr/bin/env bash
# Starts the local Akutan stack on 127.0.0.1: three "datacenters" dc1..dc3,
# each with one replica of the replicated log (one Raft cluster across them).
# State, logs and PIDs live under .localstack/ at the repository root.
# Idempotent: replicas already running are left alone.
#
# Environment: AKUTAN_STACK_DIR (default <repo>/.localstack),
# AKUTAN_BASE_PORT (default 17000: Raft on BASE+1.., gRPC on BASE+101..),
# AKUTAN_BIN (default <repo>/bin, where `make build` puts the binaries).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "${ROOT}/localstack/lib.sh"

mkdir -p "${STACK}/logs" "${STACK}/pids"
for i in 1 2 3; do
  start_log "$i"
done

printf 'waiting for the log to elect a leader'
for _ in $(seq 1 150); do
  if "${BIN}/akutan" log info --linearizable --log "$(log_grpc_addrs)" >/dev/null 2>&1; then
    echo
    "${BIN}/akutan" log info --log "$(log_grpc_addrs)"
    cat <<MSG

Akutan's local stack is up (state in ${STACK}).
  log replicas (gRPC): $(log_grpc_addrs)
Try:
  bin/akutan log info
  bin/akutan log tail
Stop one datacenter with: make dc-down DC=dc1   (and make dc-up DC=dc1)
Stop everything with:     make down
MSG
    exit 0
  fi
  printf '.'
  sleep 0.2
done
echo
echo "the log did not become available in 30s; see ${STACK}/logs" >&2
exit 1
