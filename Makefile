# Cairn. `make help` lists the targets.
GO      ?= go
BIN     := $(CURDIR)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/cairn-ops/cairn/internal/version.Version=$(VERSION)
CMDS    := ./agent/cmd/... ./controller/cmd/... ./plugins/examples/...

.PHONY: help build test fmt-check vet proto proto-check test-go bench demo demo-fail clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build every binary into ./bin
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ $(CMDS)

test: fmt-check vet proto-check test-go ## gofmt check, go vet, generated-code check, all tests with -race

fmt-check:
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$bad" ]; then echo "gofmt needed on:"; echo "$$bad"; exit 1; fi

vet:
	$(GO) vet ./...

proto-check:
	proto/gen.sh --check

test-go:
	$(GO) test -race -count=1 -timeout 30m ./...

proto: ## regenerate the Go code from proto/*.proto with pinned generators
	proto/gen.sh

bench: build ## cairn-agent vs facter and ohai (installed from Debian), then the Go benchmarks
	test/bench/audit-vs-peers.sh
	$(GO) test -run '^$$' -bench . -benchmem ./...

demo: build ## a release signed off and rolled out canary-first to three local agents, with reports
	examples/demo/demo.sh

demo-fail: build ## a release whose canary makes an undeclared change: halted and rolled back
	examples/demo/demo-fail.sh

clean: ## remove build output
	rm -rf $(BIN)
