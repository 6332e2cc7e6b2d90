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

.PHONY: all build test lint bench demo tools clean

all: lint test build

## build: the qscale binary in bin/
build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/qscale ./cmd/qscale

FUZZTIME         ?= 10s

## test: unit and integration tests (Kafka through kfake on loopback ports), then a bounded
## run of the annotation parser's fuzz target
test:
	$(GO) test -race -count=1 ./...
	$(GO) test -run '^$$' -fuzz FuzzParseSpec -fuzztime $(FUZZTIME) ./scaler/

## lint: gofmt, go vet and golangci-lint with .golangci.yml
lint: $(GOLANGCI_LINT)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GOLANGCI_LINT) run ./...

## bench: benchmarks with the figures recorded in BENCHMARKS.md
bench:
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) ./...

## demo: the end-to-end demonstration
demo:
	@echo "make demo is coming: it needs the scaling loop and the end-to-end control plane."

tools: $(GOLANGCI_LINT)

$(GOLANGCI_LINT):
	@echo "building golangci-lint $(GOLANGCI_VERSION) into $(CACHE) (once)"
	GOBIN=$(dir $@) GOFLAGS=-buildvcs=false $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)

clean:
	rm -rf bin
