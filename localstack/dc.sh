#!/usr/bin/env bash
# dc.sh up|down dcN: start or stop every process of one datacenter (its log
# replica, views and API server), to try a datacenter failure by hand. State
# is kept, so "up" recovers it and the views catch up from the log.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "${ROOT}/localstack/lib.sh"
action="${1:-}" dc="${2:-}"
if [[ ! "$dc" =~ ^dc[123]$ || ! "$action" =~ ^(up|down)$ ]]; then
  echo "usage: dc.sh up|down dc1|dc2|dc3" >&2
  exit 2
fi
mkdir -p "${STACK}/logs" "${STACK}/pids"
case "$action" in
  down) stop_dc "${dc#dc}" ;;
  up) start_dc "${dc#dc}" ;;
esac
