#!/usr/bin/env bash
# Offline checks of the Terraform layout: formatting (terraform fmt) and lint
# (tflint with its bundled terraform ruleset) over the root module, every
# module under modules/ and every example under examples/.
#
# Needs only the Go module proxy: Terraform and tflint are built from source
# into <repo>/.tools/bin on first use (6-12 minutes on 2 cores) and reused after
# that. No provider or tflint plugin is downloaded.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="${ROOT}/.tools/bin"
TERRAFORM_VERSION="1.5.7"
# Pinned to what @latest resolved to when this was written, so that a new
# tflint release (new rules, newer Go) cannot break CI overnight. Bump on
# purpose.
TFLINT_VERSION="0.64.0"

# No update checks, and no complaint about a CLI config file that a
# TF_CLI_CONFIG_FILE in the environment names but that does not exist.
export CHECKPOINT_DISABLE=1
if [[ -n "${TF_CLI_CONFIG_FILE:-}" && ! -e "${TF_CLI_CONFIG_FILE}" ]]; then
  unset TF_CLI_CONFIG_FILE
fi

log() { printf '==> %s\n' "$*"; }

# ensure_tool NAME MODULE VERSION VERSION_LINE: go install MODULE@VERSION unless
# TOOLS/NAME exists and its --version output contains VERSION_LINE.
reports() { [[ -x "$1" ]] && [[ "$("$1" --version 2>/dev/null || true)" == *"$2"* ]]; }

ensure_tool() {
  local name="$1" module="$2" version="$3" want="$4"
  local bin="${TOOLS}/${name}"
  if reports "${bin}" "${want}"; then
    log "${name} ${version}: cached in ${bin}"
    return
  fi
  log "${name} ${version}: building from the Go module proxy (first time takes minutes)"
  mkdir -p "${TOOLS}"
  GOBIN="${TOOLS}" go install "${module}@v${version}"
  if ! reports "${bin}" "${want}"; then
    echo "check.sh: ${bin} does not report ${want}" >&2
    exit 1
  fi
}

ensure_tool terraform github.com/hashicorp/terraform "${TERRAFORM_VERSION}" "Terraform v${TERRAFORM_VERSION}"
ensure_tool tflint github.com/terraform-linters/tflint "${TFLINT_VERSION}" "TFLint version ${TFLINT_VERSION}"

cd "${ROOT}"

log "terraform fmt -check -recursive terraform/"
if ! "${TOOLS}/terraform" fmt -check -recursive -diff terraform/; then
  echo "check.sh: terraform fmt found unformatted files; run: ${TOOLS}/terraform fmt -recursive terraform/" >&2
  exit 1
fi

# --recursive visits every directory with .tf files: the root module,
# modules/* and examples/*. The config enables only the bundled terraform
# ruleset, so tflint downloads nothing (and needs no tflint --init).
log "tflint --recursive (bundled terraform ruleset, preset all)"
"${TOOLS}/tflint" --chdir=terraform --recursive \
  --config="${ROOT}/terraform/.tflint.hcl" \
  --minimum-failure-severity=notice

log "terraform checks passed"
