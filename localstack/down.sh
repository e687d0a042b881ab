#!/usr/bin/env bash
# Stops exactly the processes the local stack started (recorded PIDs), and
# keeps their state. AKUTAN_STACK_WIPE=1 also deletes the state.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "${ROOT}/localstack/lib.sh"
[[ -d "${STACK}/pids" ]] || { echo "nothing to stop"; exit 0; }
# Object storage goes last, so servers can finish what they were writing.
for pidfile in "${STACK}"/pids/*.pid; do
  [[ -e "$pidfile" ]] || continue
  name="$(basename "$pidfile" .pid)"
  [[ "$name" == minio ]] || stop "$name"
done
stop minio
if [[ "${AKUTAN_STACK_WIPE:-0}" == 1 ]]; then
  rm -rf "${STACK}"
  echo "deleted ${STACK}"
fi
# The views files (ctl.sh views) are written again from the topology by up.sh.
rm -rf "${STACK}/views"
