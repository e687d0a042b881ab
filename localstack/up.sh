#!/usr/bin/env bash
# Starts the local Akutan stack on 127.0.0.1 as the topology file says
# (localstack/topology.yaml by default: three "datacenters" dc1..dc3, each
# one cluster with a log voter (one Raft log across them), an API server,
# and HashSP and HashPO views in 2 partitions x 1 replica). Waits until
# every DC's cluster is fully available, and prints each DC's verdicts and
# why: one view per range and one API server make a DC fully available but
# not healthy. Idempotent: processes already running are left alone. State,
# logs and PIDs live under .localstack/ at the repository root.
#
# Environment: AKUTAN_STACK_DIR (default <repo>/.localstack),
# AKUTAN_TOPOLOGY (the topology file; format in infra/topology),
# AKUTAN_BASE_PORT (default 17000; the file's ports.base and MinIO's; see
# lib.sh for the port layout), AKUTAN_PARTITIONS and AKUTAN_REPLICAS
# (override every space's partitions and replicas in the file),
# AKUTAN_BIN (default <repo>/bin, where `make build` puts the binaries),
# AKUTAN_STORE (a store URL instead of the local MinIO),
# AKUTAN_CHECKPOINT_INTERVAL (how often views checkpoint; default 60s).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "${ROOT}/localstack/lib.sh"
source "${ROOT}/localstack/prometheus.sh"

load_topology
mkdir -p "${STACK}/logs" "${STACK}/pids"
start_minio
register_clusters
for dc in $DCS; do start_log "$dc"; done
join_restored_logs
for dc in $DCS; do start_views "$dc"; done
for dc in $DCS; do start_api "$dc"; done
start_truncator
start_pruner
start_prometheus

# available DC: whether DC's API servers judge their cluster fully available
# (akutan status exits 0).
# A DC with only log voters has no cluster to judge.
available() {
  local apis
  apis="$(servers api "$1" | field 4 | join)"
  [[ -z "$apis" ]] || "${BIN}/akutan" status --api "$apis" >/dev/null 2>&1
}

printf 'waiting for every datacenter to be fully available'
for _ in $(seq 1 300); do
  waiting=""
  for dc in $DCS; do available "$dc" || waiting+=" $(dc_name "$dc")"; done
  if [[ -z "$waiting" ]]; then
    echo
    # The verdict lines of akutan status: each DC's, and what it misses.
    "${BIN}/akutan" status --api "$(api_addrs)" 2>&1 | grep -E 'fully available|missing for' || true
    cat <<MSG

Each datacenter is one cluster: its API servers read its own views, the
other DCs' only as a counted fallback. Healthy needs 3 up-to-date views at
every point and 3 API servers in the DC; the topology ($(basename "$TOPOLOGY")) has
$(for dc in $DCS; do echo "  $(summary "$dc")"; done)
so a DC below that is fully available but not healthy.

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
Fail a datacenter with: make dc-down DC=$(dc_name 1)   (and bring it back: make dc-up DC=$(dc_name 1))
Stop everything with:   make down
MSG
    exit 0
  fi
  printf '.'
  sleep 0.2
done
echo
"${BIN}/akutan" status --api "$(api_addrs)" || true
echo "not fully available in 60s:${waiting}; see ${STACK}/logs" >&2
exit 1
