#!/usr/bin/env bash
# dc.sh up|down DC: start or stop every process of one datacenter of the
# topology file (its log voters, views and API servers), to try a
# datacenter failure by hand. State is kept, so "up" recovers it and the
# views catch up from the log.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "${ROOT}/localstack/lib.sh"
load_topology
action="${1:-}" dc="$(dc_index "${2:-}")"
if [[ -z "$dc" || ! "$action" =~ ^(up|down)$ ]]; then
  echo "usage: dc.sh up|down $(IFS='|'; echo "${DC_NAMES[*]}")" >&2
  exit 2
fi
mkdir -p "${STACK}/logs" "${STACK}/pids"
case "$action" in
  down) stop_dc "$dc" ;;
  up) start_dc "$dc" ;;
esac
