# Akutan build, test and benchmark entry points.
SHELL := /bin/bash
ROOT := $(CURDIR)
TOOLS := $(ROOT)/.tools/bin
export PATH := $(TOOLS):$(PATH)

PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.5.1
PROTOS := $(shell find proto -name '*.proto')

# MinIO, the S3-compatible object store of the tests and the local stack,
# built from the Go module proxy once (about 3.5 minutes) and cached.
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c

# Prometheus and promtool, for the local stack's monitoring and the alert
# rules' checks, built from the Go module proxy once (about 4 minutes) and
# cached.
PROMETHEUS_VERSION := v0.316.0
PROMETHEUS_MOD := github.com/prometheus/prometheus

# staticcheck, the linter `make test` runs, built from the Go module proxy.
STATICCHECK_VERSION := v0.8.2

# Packages with concurrency run under the race detector; the rest run
# without it. Together they are every package.
RACE_PKGS := ./logsvc/... ./viewsvc/... ./apisvc/...
PLAIN_PKGS = $(shell go list ./... | grep -v -e '/logsvc' -e '/viewsvc' -e '/apisvc')

.PHONY: all build release test vet lint tools-staticcheck fuzz fuzz-short bench proto tools-proto tools-minio tools-chromium tools-prometheus tools-promtool rules clean up down dc-up dc-down

all: build

# Build stamp of every binary (internal/buildinfo; --version prints it).
BUILDINFO := github.com/akutan/akutan/internal/buildinfo
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
COMMIT := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BUILD_DATE := $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -X $(BUILDINFO).Version=$(VERSION) -X $(BUILDINFO).Commit=$(COMMIT) -X $(BUILDINFO).Date=$(BUILD_DATE)

## build: compile every binary into bin/, stamped with version, commit and date.
build:
	@mkdir -p bin
	go build -ldflags "$(LDFLAGS)" -o bin/ ./services/...

## release: static binaries (CGO_ENABLED=0, -trimpath, stamped like build)
## for every RELEASE_PLATFORMS entry, packed with the systemd units
## (deploy/systemd), the example env files (deploy/env) and install.sh as
## dist/akutan-VERSION-OS-ARCH.tar.gz; terraform/ installs them.
RELEASE_PLATFORMS := linux/amd64 linux/arm64
release:
	@set -e; rm -rf dist; mkdir -p dist; for p in $(RELEASE_PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; name=akutan-$(VERSION)-$$os-$$arch; d=dist/$$name; \
	  echo "release $$name"; mkdir -p $$d/bin $$d/systemd $$d/env; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch go build -trimpath -ldflags "$(LDFLAGS)" -o $$d/bin/ ./services/...; \
	  cp deploy/systemd/* $$d/systemd/; cp deploy/env/*.env $$d/env/; cp deploy/release/install.sh $$d/; \
	  echo "$(VERSION)" > $$d/VERSION; \
	  tar -C dist --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -czf $$d.tar.gz $$name; \
	  rm -rf $$d; \
	done; ls -l dist

## up: build everything and start the local stack on 127.0.0.1.
up: build tools-minio tools-prometheus
	bash localstack/up.sh

## down: stop what the local stack started (state kept in .localstack/).
down:
	bash localstack/down.sh

## dc-down / dc-up DC=dc1: stop or restart one datacenter of the local stack.
dc-down:
	bash localstack/dc.sh down $(DC)
dc-up: build tools-minio
	bash localstack/dc.sh up $(DC)

## lint: staticcheck over every package (its default checks).
lint: tools-staticcheck
	staticcheck ./...

## vet: gofmt and go vet.
vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...

## test: everything CI runs: vet, unit, integration and process tests (the
## concurrent packages under the race detector; their process tests, which
## -short skips there, run once without it), and the offline Terraform
## checks, which build terraform and tflint into .tools/bin the first time.
test: vet lint build tools-minio tools-chromium rules fuzz-short
	go test -count=1 -timeout 60m $(PLAIN_PKGS)
	go test -count=1 -timeout 30m -run 'TestKillLeaderUnderLoad|TestCorruptDataFileAtRestart' ./logsvc/
	go test -count=1 -race -short -timeout 40m $(RACE_PKGS)
	bash terraform/check.sh

## fuzz: run every fuzz target (package:target) for FUZZTIME each, one at a
## time (go test fuzzes one target per run). New inputs that fail are
## written to the package's testdata/fuzz/<target>/, the committed corpus
## every plain `go test` replays; fuzz-short, part of test, runs each 30,000 times.
FUZZTIME ?= 5m
FUZZ_TARGETS := ./snapshot/:FuzzSegment ./snapshot/:FuzzCatalog ./snapshot/:FuzzManifest \
	./logsvc/:FuzzEnvelope ./logsvc/:FuzzDecodeCommand ./viewsvc/:FuzzRawTx ./viewsvc/:FuzzDecodeEntry \
	./apisvc/facttext/:FuzzParseLine ./apisvc/facttext/:FuzzFormatLine ./apisvc/:FuzzPageToken
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  echo "fuzz $${t#*:} in $${t%%:*} for $(FUZZTIME)"; \
	  go test -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) $${t%%:*}; \
	done
# fuzz-short counts executions rather than seconds: a duration races the
# fuzz coordinator's own deadline on a loaded machine and fails with a bare
# "context deadline exceeded" and no input (golang/go#75804, fixed in Go
# 1.27); a count has no deadline. 30,000 runs take 2-10 s per target here.
fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=30000x

## bench: every benchmark; figures go to docs/benchmarks.md. The log,
## view and end-to-end benchmarks time themselves (one iteration each; the
## view benchmarks load 10 million facts, AKUTAN_VIEW_BENCH_FACTS changes that);
## the fanout benchmark runs for 3 s per case. -v shows the figures they
## log, such as bytes per fact and the cold-cache lookup rate.
bench: build tools-minio
	go test -v -run '^$$' -bench . -benchtime 1x -timeout 60m ./logsvc/ ./viewsvc/ ./localstack/ ./infra/restore/
	go test -run '^$$' -bench . -benchtime 3s -timeout 10m ./apisvc/internal/fanout/

## proto: regenerate the committed gRPC code.
proto: tools-proto
	protoc --proto_path=proto \
	  --go_out=proto --go_opt=paths=source_relative \
	  --go-grpc_out=proto --go-grpc_opt=paths=source_relative \
	  $(patsubst proto/%,%,$(PROTOS))

## tools-minio: build MinIO into .tools/bin unless it is there.
tools-minio:
	@[ -x $(TOOLS)/minio ] || (echo "building MinIO $(MINIO_VERSION) into .tools/bin (once, a few minutes)"; \
	  GOBIN=$(TOOLS) GOFLAGS=-mod=mod go install github.com/minio/minio@$(MINIO_VERSION))

## tools-prometheus: build Prometheus and promtool into .tools/bin unless
## they are there; `make up` runs Prometheus on 127.0.0.1:17990.
tools-prometheus:
	@[ -x $(TOOLS)/prometheus ] && [ -x $(TOOLS)/promtool ] || (echo "building Prometheus $(PROMETHEUS_VERSION) into .tools/bin (once, a few minutes)"; \
	  GOBIN=$(TOOLS) GOFLAGS=-mod=mod go install $(PROMETHEUS_MOD)/cmd/prometheus@$(PROMETHEUS_VERSION) $(PROMETHEUS_MOD)/cmd/promtool@$(PROMETHEUS_VERSION))

## tools-promtool: build only promtool into .tools/bin unless it is there.
tools-promtool:
	@[ -x $(TOOLS)/promtool ] || (echo "building promtool $(PROMETHEUS_VERSION) into .tools/bin (once, a few minutes)"; \
	  GOBIN=$(TOOLS) GOFLAGS=-mod=mod go install $(PROMETHEUS_MOD)/cmd/promtool@$(PROMETHEUS_VERSION))

## rules: check the alert rules (deploy/prometheus) and run their unit
## tests with promtool; `make test` runs it.
rules: tools-promtool
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts_test.yml

## tools-chromium: install Debian's chromium unless it is there; the status
## page test renders the page in it, headless.
tools-chromium:
	@command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

tools-staticcheck:
	@[ -x $(TOOLS)/staticcheck ] || GOBIN=$(TOOLS) GOFLAGS=-mod=mod go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

tools-proto:
	@command -v protoc >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y protobuf-compiler)
	@[ -x $(TOOLS)/protoc-gen-go ] || GOBIN=$(TOOLS) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@[ -x $(TOOLS)/protoc-gen-go-grpc ] || GOBIN=$(TOOLS) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

clean:
	rm -rf bin dist

## chaos: the linearizability check under faults (localstack's TestChaos,
## which make test runs for 2 minutes) for AKUTAN_CHAOS_DURATION, 10m
## unless set. On a failed check porcupine's visualization of the history
## is in AKUTAN_TEST_ARTIFACTS (default .tools/chaos/).
.PHONY: chaos
## procedures: only the tests of the operator procedures under load
## (localstack TestCluster*, TestColdStart; make test runs them too).
procedures: build tools-minio
	go test -count=1 -v -timeout 60m -run 'TestCluster|TestColdStart' ./localstack/

chaos: tools-minio
	AKUTAN_CHAOS_DURATION=$${AKUTAN_CHAOS_DURATION:-10m} AKUTAN_TEST_ARTIFACTS=$${AKUTAN_TEST_ARTIFACTS:-$(ROOT)/.tools/chaos} \
	  go test -count=1 -v -timeout 90m -run 'TestChaos$$' ./localstack/
