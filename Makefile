# microk8s-platform — the one entry point. `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO          ?= go
FUZZTIME    ?= 10s
BENCH_TIME  ?= 10s
BENCH_CONC  ?= 32

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: run
run: ## Run the comments service locally on :8080 (memory store; set DATABASE_URL for PostgreSQL)
	cd service && $(GO) run ./cmd/comments

.PHONY: test
test: lint test-service fuzz test-infra ## Run every test (what CI runs)

.PHONY: test-service
test-service: ## Service tests: handlers, both stores (real PostgreSQL), restart, shutdown under load
	cd service && $(GO) test -count=1 ./...

.PHONY: fuzz
fuzz: ## Fuzz request decoding briefly (FUZZTIME=10s)
	cd service && $(GO) test -run '^$$' -fuzz FuzzDecodeNewComment -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./api

.PHONY: test-infra
test-infra: ## Infrastructure tests (mocks, policy, scripts)
	@if [ -n "$$($(GO) list ./... 2>/dev/null)" ]; then $(GO) test -count=1 ./...; else echo "no infrastructure packages yet"; fi

.PHONY: lint
lint: ## gofmt, go vet and shellcheck
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	@if [ -n "$$($(GO) list ./... 2>/dev/null)" ]; then $(GO) vet ./...; fi
	cd service && $(GO) vet ./...
	@scripts=$$(git ls-files '*.sh' .ci/run); if [ -n "$$scripts" ]; then shellcheck $$scripts; fi

.PHONY: bench
bench: ## Benchmark the service over loopback: POST/GET x memory/PostgreSQL (req/s, p50, p99)
	cd service && $(GO) build -o bin/comments ./cmd/comments && \
	  $(GO) run ./cmd/bench -bin bin/comments -duration $(BENCH_TIME) -c $(BENCH_CONC)

.PHONY: clean
clean: ## Remove built binaries
	rm -rf bin service/bin
