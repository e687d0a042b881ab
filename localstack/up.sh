#!/usr/bin/env bash
# Starts the local Akutan stack on 127.0.0.1: three "datacenters" dc1..dc3,
# each with a log replica (one Raft cluster across them), an API server, and
# HashSP and HashPO views (2 partitions x 1 replica by default), so each DC
# holds a full copy. Waits until the cluster is fully available. Idempotent:
# processes already running are left alone. State, logs and PIDs live under
# .localstack/ at the repository root.
#
# Environment: AKUTAN_STACK_DIR (default <repo>/.localstack),
# AKUTAN_BASE_PORT (default 17000; see lib.sh for the port layout),
# AKUTAN_PARTITIONS and AKUTAN_REPLICAS (views per space per DC),
# AKUTAN_BIN (default <repo>/bin, where `make build` puts the binaries),
# AKUTAN_STORE (a store URL instead of the local MinIO),
# AKUTAN_CHECKPOINT_INTERVAL (how often views checkpoint; default 60s).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "${ROOT}/localstack/lib.sh"
source "${ROOT}/localstack/prometheus.sh"

mkdir -p "${STACK}/logs" "${STACK}/pids"
start_minio
for dc in $DCS; do start_log "$dc"; done
join_restored_logs
for dc in $DCS; do start_views "$dc"; done
for dc in $DCS; do start_api "$dc"; done
start_truncator
start_pruner
start_prometheus

printf 'waiting for the cluster to be fully available'
for _ in $(seq 1 300); do
  if "${BIN}/akutan" status --api "$(api_addr 1)" >/dev/null 2>&1; then
    echo
    summary="$("${BIN}/akutan" status --api "$(api_addr 1)" || true)"
    sed -n 1,3p <<<"$summary"
    cat <<MSG

Akutan's local stack is up (state and logs in ${STACK}).
  API servers:  $(api_addrs)
  log replicas: $(log_grpc_addrs)
  HTTP (/metrics, /healthz, /readyz): each server's gRPC port + 1000, e.g. $(api_http_addr 1)/readyz
Try:
  bin/akutan insert localstack/demo.facts
  bin/akutan lookup '<alice>'
  bin/akutan lookup _ '<age>' '>=' 30
  bin/akutan status
  bin/akutan backup now && bin/akutan backup list
Object storage: $(store_url)
Prometheus:     http://${PROMETHEUS_ADDR} (alerts: deploy/prometheus/alerts.yml)
Fail a datacenter with: make dc-down DC=dc1   (and bring it back: make dc-up DC=dc1)
Stop everything with:   make down
MSG
    exit 0
  fi
  printf '.'
  sleep 0.2
done
echo
"${BIN}/akutan" status --api "$(api_addr 1)" || true
echo "the cluster did not become fully available in 60s; see ${STACK}/logs" >&2
exit 1
