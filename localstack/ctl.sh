#!/usr/bin/env bash
# ctl.sh: the control plane's driver of the local stack (infra/cluster's
# LocalDriver runs it; it works by hand too). One server at a time, by the
# name the topology gives it (akutan topology servers):
#
#   ctl.sh start NAME              start it as up.sh does (already running: nothing)
#   ctl.sh join NAME               a log voter on an empty disk, without
#                                  --bootstrap: it waits to be added as a voter
#   ctl.sh stop NAME               SIGTERM, then SIGKILL after 10 s
#   ctl.sh wipe NAME               delete its data dir (refused while it runs)
#   ctl.sh running NAME            exit 0 when it runs, 1 when not
#   ctl.sh start-extra NAME LIKE ADDR
#                                  an extra view or API server NAME like the
#                                  topology's LIKE (same DC, space, range) at
#                                  ADDR: the temporary server of a rolling
#                                  restart or a replacement
#   ctl.sh views add|remove DC ADDR
#                                  add a view address to, or remove it from,
#                                  the file DC's API servers read every second
#                                  (and the other DCs' fallback files)
#   ctl.sh bin NAME DIR            start NAME (an extra too) from now on with
#                                  the binaries in DIR (an upgrade or a
#                                  rollback); DIR = AKUTAN_BIN goes back to
#                                  the default. A running NAME keeps its own
#                                  until restarted.
#
# Extra servers are stopped, wiped and checked by NAME like the others.
# The environment is lib.sh's (AKUTAN_STACK_DIR, AKUTAN_BASE_PORT, ...).
# Exit codes: 0 done, 1 failed, 2 usage.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "${ROOT}/localstack/lib.sh"

usage() { sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# data_dirs NAME: the data dir NAME has in any DC (none if never started).
data_dirs() {
  local dc
  for dc in "${DC_NAMES[@]}"; do
    [[ -e "${STACK}/${dc}/$1" ]] && echo "${STACK}/${dc}/$1"
  done
  true
}

# role_of NAME: log, view or api, from the topology.
role_of() { server_line "$1" | field 1; }

action="${1:-}"
[[ -n "$action" ]] || usage
shift
load_topology
mkdir -p "${STACK}/logs" "${STACK}/pids"
case "$action" in
  start)
    (($# == 1)) || usage
    case "$(role_of "$1")" in
      log) start_log_server "$1" ;;
      view) start_view_server "$1" ;;
      api) start_api_server "$1" ;;
      *) exit 1 ;;
    esac
    ;;
  join)
    (($# == 1)) || usage
    [[ "$(role_of "$1")" == log ]] || { echo "${1} is not a log voter" >&2; exit 1; }
    start_log_server "$1" join
    ;;
  stop)
    (($# == 1)) || usage
    stop "$1"
    ;;
  wipe)
    (($# == 1)) || usage
    if running "$1"; then
      echo "${1} is running: stop it first" >&2
      exit 1
    fi
    for dir in $(data_dirs "$1"); do
      rm -rf "$dir"
      echo "wiped ${dir}"
    done
    ;;
  running)
    (($# == 1)) || usage
    running "$1"
    ;;
  start-extra)
    (($# == 3)) || usage
    case "$(role_of "$2")" in
      view) start_view_server "$1" "$2" "$3" ;;
      api) start_api_server "$1" "$2" "$3" ;;
      *) echo "only views and API servers have extras" >&2; exit 1 ;;
    esac
    ;;
  bin)
    (($# == 2)) || usage
    [[ -d "$2" ]] || { echo "no directory ${2}" >&2; exit 1; }
    dir="$(cd "$2" && pwd)"
    # A topology server's binary must be there; an extra's (NAME-tmp) is
    # checked when it starts.
    if role="$(role_of "$1" 2>/dev/null)" && [[ ! -x "${dir}/akutan-${role}" ]]; then
      echo "${dir} has no akutan-${role}" >&2
      exit 1
    fi
    mkdir -p "${STACK}/binaries"
    if [[ "$dir" == "$(cd "$BIN" && pwd)" ]]; then
      rm -f "${STACK}/binaries/${1}"
    else
      echo "$dir" >"${STACK}/binaries/${1}.new"
      mv "${STACK}/binaries/${1}.new" "${STACK}/binaries/${1}"
    fi
    echo "${1} starts from ${dir}"
    ;;
  views)
    (($# == 3)) && [[ "$1" =~ ^(add|remove)$ ]] || usage
    dc="$(dc_index "$2")"
    [[ -n "$dc" ]] || { echo "no datacenter ${2}" >&2; exit 1; }
    # The DC's views file, and the other DCs' fallback files, which list
    # this DC's views too: a retired view must leave both.
    write_views_files "$dc"
    files=("$(views_file "$dc")")
    for o in $(other_dcs "$dc"); do
      write_views_files "$o"
      files+=("$(fallback_file "$o")")
    done
    for file in "${files[@]}"; do
      # Rewritten whole and renamed into place, so a reader never sees half.
      grep -vxF "$3" "$file" >"${file}.new" || true
      [[ "$1" == add ]] && echo "$3" >>"${file}.new"
      mv "${file}.new" "$file"
    done
    echo "${1/%e/}ed ${3} $([[ "$1" == add ]] && echo to || echo from) ${2}'s views (and the other DCs' fallback views)"
    ;;
  *) usage ;;
esac
