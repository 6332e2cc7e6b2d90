# qscale — build, test, lint and benchmark. Tools are built once into $(CACHE), outside the
# clone, so a fresh clone reuses them.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

CACHE            ?= $(HOME)/.cache/qscale
GO               ?= go
VERSION          ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GOLANGCI_VERSION := v2.15.0
GOLANGCI_LINT    := $(CACHE)/golangci-lint-$(GOLANGCI_VERSION)/golangci-lint
BENCHTIME        ?= 300x
HELM_VERSION     := v3.22.0
HELM             := $(CACHE)/helm-$(HELM_VERSION)/helm

# The image builder is a module of its own, so that its registry client stays out of qscale.
IMAGE_TOOL       := build/image
IMAGE_PLATFORMS  ?= linux/amd64,linux/arm64
IMAGE_ENV        := SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || echo 0)

# The control plane for end-to-end tests, built from Go modules pinned in e2e/tools and cached
# by the hash of those modules.
K8S_TOOLS        := e2e/tools/kubernetes e2e/tools/etcd
K8S_VERSION      := $(shell awk '{ sub(/^require[ \t]+/, "") } $$1 == "k8s.io/kubernetes" { print $$2; exit }' e2e/tools/kubernetes/go.mod)
# The binaries report K8S_VERSION (helm checks a chart's kubeVersion against it); the key
# covers the build flags as well as the modules.
K8S_LDFLAGS      := -s -w -X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) -X k8s.io/component-base/version.gitTreeState=clean
K8S_HASH         := $(shell { cat $(foreach d,$(K8S_TOOLS),$(d)/go.mod $(d)/go.sum); echo '$(K8S_LDFLAGS)'; } | sha256sum | cut -c1-12)
K8S_BIN          ?= $(CACHE)/k8s-$(K8S_HASH)
K8S_BINARIES     := $(K8S_BIN)/etcd $(K8S_BIN)/kube-apiserver $(K8S_BIN)/kube-controller-manager \
                    $(K8S_BIN)/kube-scheduler $(K8S_BIN)/kwok

.PHONY: all build test fuzz test-image lint bench bench-e2e demo tools clean k8s-bin e2e brokers test-chart image image-push

all: lint test build

## build: the qscale binary in bin/
build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/qscale ./cmd/qscale

FUZZTIME         ?= 10000x # inputs, not seconds: a time budget races the Go 1.26 fuzz coordinator (golang/go#75804)

## brokers: a RabbitMQ broker with its management API on loopback (installed and started if
## missing), and Debian's ActiveMQ with the jars for Jolokia (installed if missing; the tests
## start their own brokers); Kafka needs none: the tests run franz-go's kfake in-process
brokers:
	bash .ci/rabbitmq.sh
	bash .ci/activemq.sh

## test: unit and integration tests (Kafka through kfake, RabbitMQ on a real broker), then a
## bounded run of every fuzz target (the annotation parser and the brokers' answers)
test: brokers
	$(GO) test -race -count=1 ./...
	$(MAKE) --no-print-directory fuzz

## fuzz: each fuzz target of the repository for FUZZTIME inputs
fuzz:
	@grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u | while read -r dir; do \
	  for target in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go | cut -c6- | sort -u); do \
	    echo "fuzz $$dir $$target"; \
	    $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$dir || exit 1; \
	  done; \
	done

## test-image: tests of the image builder (cross-builds qscale: a release's concern, not make test's)
test-image:
	cd $(IMAGE_TOOL) && $(GO) test -count=1 -timeout 20m ./...

## lint: gofmt, go vet and golangci-lint with .golangci.yml
lint: $(GOLANGCI_LINT)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GOLANGCI_LINT) run ./...
	cd $(IMAGE_TOOL) && $(GO) vet ./... && $(GOLANGCI_LINT) run ./...

## bench: benchmarks with the figures recorded in BENCHMARKS.md
bench: brokers
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) ./...

## test-chart: lint, render and check charts/qscale, then install it into a real control plane
## and scale a workload with qscale holding exactly the chart's permissions
test-chart: $(HELM) build k8s-bin
	HELM=$(HELM) ./charts/test.sh
	QSCALE_K8S_BIN=$(K8S_BIN) QSCALE_BIN=$(CURDIR)/bin/qscale QSCALE_HELM=$(HELM) \
	  $(GO) test -tags e2e -count=1 -timeout 10m -v -run '^TestChart' ./e2e/

$(HELM):
	@echo "building helm $(HELM_VERSION) into $(dir $@) (once)"
	mkdir -p $(dir $@)
	GOBIN=$(dir $@) GOFLAGS=-buildvcs=false $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

## k8s-bin: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (the fake
## kubelet that gives pods a lifecycle), built once into $(K8S_BIN)
k8s-bin: $(K8S_BINARIES)

$(K8S_BIN)/etcd:
	@echo "building etcd into $(K8S_BIN) (once, about 2 minutes)"
	cd e2e/tools/etcd && $(GO) build -trimpath -ldflags='-s -w' -o $@ go.etcd.io/etcd/server/v3

$(K8S_BIN)/kube-apiserver $(K8S_BIN)/kube-controller-manager $(K8S_BIN)/kube-scheduler $(K8S_BIN)/kwok &:
	@test -n "$(K8S_VERSION)" || { echo "no k8s.io/kubernetes version found in e2e/tools/kubernetes/go.mod"; exit 1; }
	@echo "building kube-apiserver, kube-controller-manager, kube-scheduler and kwok into $(K8S_BIN)"
	@echo "(once: 10 to 25 minutes on 2 cores; later runs reuse them)"
	@cd e2e/tools/kubernetes && start=$$(date +%s) && \
	  { $(GO) build -trimpath -ldflags='$(K8S_LDFLAGS)' -o $(K8S_BIN)/ \
	      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
	      k8s.io/kubernetes/cmd/kube-scheduler sigs.k8s.io/kwok/cmd/kwok & } && \
	  pid=$$! && n=0 && \
	  while kill -0 $$pid 2>/dev/null; do \
	    sleep 1; n=$$((n + 1)); \
	    [ $$((n % 30)) -ne 0 ] || echo "  still building: $$(( $$(date +%s) - start ))s"; \
	  done && wait $$pid && echo "built in $$(( $$(date +%s) - start ))s"

## e2e: end-to-end scenarios against a real control plane (qscale runs as a process)
e2e: build k8s-bin brokers
	QSCALE_K8S_BIN=$(K8S_BIN) QSCALE_BIN=$(CURDIR)/bin/qscale $(GO) test -tags e2e -count=1 -timeout 20m -v -skip '^TestChart' ./e2e/

BENCH_E2E         ?= .
BENCH_UNANNOTATED ?= 0
BENCH_WORKLOADS   ?= 1000

## bench-e2e: benchmarks on the end-to-end control plane; BENCH_E2E selects them by name.
## BenchmarkThousandWorkloads: qscale holding 1,000 workloads (BENCH_UNANNOTATED=3 adds 3
## unannotated Deployments with realistic pod templates per annotated one); BenchmarkScale:
## BENCH_WORKLOADS annotated workloads with 3 unannotated each, with 1 and with 3 replicas
bench-e2e: build k8s-bin
	QSCALE_K8S_BIN=$(K8S_BIN) QSCALE_BIN=$(CURDIR)/bin/qscale QSCALE_BENCH_UNANNOTATED=$(BENCH_UNANNOTATED) \
	  QSCALE_BENCH_WORKLOADS=$(BENCH_WORKLOADS) \
	  $(GO) test -tags e2e -count=1 -timeout 120m -run '^$$' -bench '$(BENCH_E2E)' -benchtime 1x ./e2e/

## demo: qscale end to end on this machine: a control plane, a Kafka-protocol broker, qscale,
## and a simulated bursty workload, with a live view (DEMO_FLAGS=-target-backlog-age=20s: scale
## on backlog age instead of lag)
demo: build k8s-bin
	QSCALE_K8S_BIN=$(K8S_BIN) $(GO) run ./e2e/demo -qscale bin/qscale $(DEMO_FLAGS)

## image: qscale's container image for this machine's architecture, as bin/qscale-image.tar
## tagged qscale:$(VERSION), for `docker load` or `kind load image-archive` (no engine needed)
image:
	mkdir -p bin
	cd $(IMAGE_TOOL) && $(IMAGE_ENV) $(GO) run . -source $(CURDIR) -version $(VERSION) -tar $(CURDIR)/bin/qscale-image.tar

## image-push: qscale's image for $(IMAGE_PLATFORMS), pushed to IMAGE=registry/repository:tag
## with the credentials of ~/.docker/config.json
image-push:
	@test -n "$(IMAGE)" || { echo "set IMAGE=registry/repository:tag"; exit 1; }
	cd $(IMAGE_TOOL) && $(IMAGE_ENV) $(GO) run . -source $(CURDIR) -version $(VERSION) -platforms $(IMAGE_PLATFORMS) -push $(IMAGE)

tools: $(GOLANGCI_LINT) $(HELM)

$(GOLANGCI_LINT):
	@echo "building golangci-lint $(GOLANGCI_VERSION) into $(CACHE) (once)"
	GOBIN=$(dir $@) GOFLAGS=-buildvcs=false $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)

clean:
	rm -rf bin
