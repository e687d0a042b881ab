#!/usr/bin/env bash
# Restores the local stack from its bucket alone: the disaster-recovery
# drill. Usage: localstack/restore.sh latest|N
#
# The stack must be stopped (make down) and its data dirs gone (everything
# under .localstack/ except minio/). It builds, at exactly index N (or the
# newest archived index), dc1's log replica and every view of every DC from
# the checkpoints and the log archive, in a new timeline: a new prefix of
# the bucket that receives the history through N. Then `make up` starts the
# restored cluster: dc1's log replica holds the restored log, dc2's and
# dc3's join it, and the views go on from N+1.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "${ROOT}/localstack/lib.sh"

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
for dc in $DCS; do
  if [[ -d "${STACK}/dc${dc}" ]] && [[ -n "$(ls -A "${STACK}/dc${dc}")" ]]; then
    echo "${STACK}/dc${dc} holds data: a restore never writes over it; delete it first" >&2
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
for dc in $DCS; do
  while read -r name space start end addr; do
    views+=(--view "${name}:${space}:${start}:${end}:${STACK}/dc${dc}/${name}")
  done < <(views_of "$dc")
done

"${BIN}/akutan" restore "${index[@]}" --store "$source_url" --target-store "$target_url" \
  --log-dir "${STACK}/dc1/log-dc1" --log-id log-dc1 --log-raft-addr "$(log_raft_addr 1)" \
  "${views[@]}"

echo "$target_url" >"${STACK}/store.url"
# dc2's and dc3's log replicas join the restored one instead of bootstrapping.
touch "${STACK}/restored"
echo "restored; start it with: make up"
