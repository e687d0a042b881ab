#!/usr/bin/env bash
# Restores the local stack from its bucket alone: the disaster-recovery
# drill. Usage: localstack/restore.sh latest|N
#
# The stack must be stopped (make down) and its data dirs gone (everything
# under .localstack/ except minio/). It builds, at exactly index N (or the
# newest archived index), the topology's first log voter (dc1's) and every
# view of every DC from the checkpoints and the log archive, in a new
# timeline: a new prefix of the bucket that receives the history through N.
# Then `make up` starts the restored database: the first log voter holds
# the restored log, the others join it, and the views go on from N+1.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "${ROOT}/localstack/lib.sh"
load_topology

at="${1:-}"
case "$at" in
  latest) index=(--latest) ;;
  '' | *[!0-9]*) echo "usage: localstack/restore.sh latest|N" >&2; exit 2 ;;
  *) index=(--to-index "$at") ;;
esac

for name in $(ls "${STACK}/pids" 2>/dev/null | sed 's/\.pid$//'); do
  if [[ "$name" != minio ]] && running "$name"; then
    echo "${name} is running: stop the stack first (make down)" >&2
    exit 1
  fi
done
for name in "${DC_NAMES[@]}"; do
  if [[ -d "${STACK}/${name}" ]] && [[ -n "$(ls -A "${STACK}/${name}")" ]]; then
    echo "${STACK}/${name} holds data: a restore never writes over it; delete it first" >&2
    exit 1
  fi
done

mkdir -p "${STACK}/logs" "${STACK}/pids"
start_minio
source_url="$(store_url)"
if [[ -n "${AKUTAN_STORE:-}" || -f "${STACK}/store.url" ]]; then
  # A directory store, or an already restored stack: a sibling prefix.
  target_url="${source_url%%\?*}-restored-$(date +%s)"
  [[ "$source_url" == *\?* ]] && target_url="${target_url}?${source_url#*\?}"
else
  target_url="s3://${BUCKET}/stack-restored-$(date +%s)?endpoint=http://${MINIO_ADDR}&region=${AWS_REGION}&path_style=true"
fi

views=()
while IFS=$'\t' read -r _ dc name _ _ space start end; do
  views+=(--view "${name}:${space}:${start}:${end}:${STACK}/${dc}/${name}")
done < <(servers view)

IFS=$'\t' read -r _ log_dc log_name _ log_raft _ <<<"$FIRST_LOG"
"${BIN}/akutan" restore "${index[@]}" --store "$source_url" --target-store "$target_url" \
  --log-dir "${STACK}/${log_dc}/${log_name}" --log-id "$log_name" --log-raft-addr "$log_raft" \
  "${views[@]}"

echo "$target_url" >"${STACK}/store.url"
# The other log voters join the restored one instead of bootstrapping.
touch "${STACK}/restored"
echo "restored; start it with: make up"
