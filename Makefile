# microk8s-platform — the one entry point. `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO          ?= go
FUZZTIME    ?= 10s
BENCH_TIME  ?= 5s
BENCH_CONC  ?= 16
BENCH_ROUNDS ?= 2
STACK       ?= dev
PULUMI      ?= pulumi
PROJECT     := microk8s-platform
# The bootstrap program's own state (it cannot live in the bucket it makes).
BACKEND_URL := file://$(CURDIR)/.pulumi-backend
# With LOCK_TABLE set, every pulumi command on a stack holds the DynamoDB
# deploy lock (scripts/stacklock); CI sets it, laptops should too.
LOCK_TABLE  ?=
# STACKLOCK: the lock helper; CI runs the binary `make helpers` builds.
STACKLOCK   ?= $(GO) run ./scripts/stacklock
LOCKED       = $(if $(LOCK_TABLE),$(STACKLOCK) run --table $(LOCK_TABLE) --key $(PROJECT)/$(STACK) --pulumi $(PULUMI) --,)
# Non-interactive in CI (GitHub sets CI=true).
YES          = $(if $(CI),--yes,)

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# ---- the main job: the platform's Kubernetes layer on a real API server ----

# An existing cluster to deploy to; empty means the offline sandbox.
CLUSTER_KUBECONFIG ?=
SANDBOX_KUBECONFIG := $(CURDIR)/.sandbox/kubeconfig
LOCAL_KUBECONFIG    = $(or $(CLUSTER_KUBECONFIG),$(SANDBOX_KUBECONFIG))
# Where the service's image (built from service/) goes: on the sandbox, a
# registry stacks/local serves on 127.0.0.1 while it runs; on your own
# cluster, IMAGE_REPOSITORY, a registry the cluster pulls from (pushed
# with your docker login), unless the stack sets appImage/imageRepository.
SANDBOX_REGISTRY   ?= 127.0.0.1:18500
IMAGE_REPOSITORY   ?=
LOCAL_IMAGE         = $(if $(CLUSTER_KUBECONFIG),$(if $(IMAGE_REPOSITORY),--image-repository $(IMAGE_REPOSITORY)),--serve-registry $(SANDBOX_REGISTRY))

.PHONY: local
local: ## THE MAIN JOB: pulumi up of the local stack on the sandbox (or CLUSTER_KUBECONFIG=path); prints outputs
ifeq ($(CLUSTER_KUBECONFIG),)
	@$(MAKE) --no-print-directory sandbox-up
else
	@command -v pulumi >/dev/null || scripts/tools/build.sh pulumi kubernetes-provider
endif
	$(GO) run ./stacks/local up --kubeconfig $(LOCAL_KUBECONFIG) $(LOCAL_IMAGE)

.PHONY: local-destroy
local-destroy: ## Destroy the local stack (same cluster choice as make local)
	$(GO) run ./stacks/local destroy --kubeconfig $(LOCAL_KUBECONFIG)

.PHONY: tools
tools: ## Build pulumi, the Kubernetes provider, kube-apiserver & co., kubectl, kwok and etcd into .tools/bin (cached)
	scripts/tools/build.sh

.PHONY: sandbox-up
sandbox-up: tools ## Start the offline control plane on 127.0.0.1 (etcd, apiserver, controller-manager, scheduler, kwok)
	scripts/deps.sh local
	scripts/sandbox/sandbox.sh up

.PHONY: sandbox-down
sandbox-down: ## Stop exactly what sandbox-up started and remove .sandbox/
	scripts/sandbox/sandbox.sh down

.PHONY: e2e
e2e: tools ## End to end on a sandbox of its own: up, checks via client-go, no-op preview, replicas change, destroy
	scripts/deps.sh local
	@export SANDBOX_DIR=$(CURDIR)/.sandbox-e2e SANDBOX_PORT_BASE=19000; \
	  trap 'scripts/sandbox/sandbox.sh down' EXIT; \
	  scripts/sandbox/sandbox.sh up && \
	  KUBECONFIG=$(CURDIR)/.sandbox-e2e/kubeconfig $(GO) test -tags e2e -count=1 -v -timeout 45m -run TestLocalStackEndToEnd ./stacks/local/

.PHONY: run
run: ## Run the comments service alone on :8080 (memory store; set DATABASE_URL for PostgreSQL)
	cd service && $(GO) run ./cmd/comments

.PHONY: test
test: ## Run every test (what CI runs); installs what they need first, then lints and tests, in that order (safe under make -j)
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory pulumi-cli
	@$(MAKE) --no-print-directory lint test-service fuzz test-infra

.PHONY: pulumi-cli
pulumi-cli: ## Build the Pulumi CLI go.mod pins into .tools/bin (the real-calls tests run it; cached)
	scripts/tools/build.sh pulumi

.PHONY: deps
deps: ## Install what the tests need and is missing: shellcheck, PostgreSQL, openssl, curl (Debian; scripts/deps.sh)
	scripts/deps.sh test

.PHONY: test-service
test-service: ## Service tests: handlers, both stores (real PostgreSQL), restart, shutdown under load
	cd service && $(GO) test -count=1 ./...

.PHONY: fuzz
fuzz: ## Fuzz request decoding (both paths) and response encoding briefly (FUZZTIME=10s each)
	cd service && $(GO) test -run '^$$' -fuzz FuzzDecodeNewComment -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./api
	cd service && $(GO) test -run '^$$' -fuzz FuzzScanAgreesWithDecoder -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./api
	cd service && $(GO) test -run '^$$' -fuzz FuzzEncodingMatchesJSON -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./api

.PHONY: test-infra
test-infra: ## Program (mocks), backend, scripts, stacklock and access helper (moto_server), workflow contract, the real-calls tiers
	$(GO) test -count=1 -timeout 30m ./...

STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: lint
lint: actionlint staticcheck shellcheck ## gofmt, go vet, staticcheck, shellcheck and actionlint
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	cd service && $(GO) vet ./...

.PHONY: shellcheck
shellcheck: ## shellcheck over every shell script
	shellcheck $$(git ls-files '*.sh') .ci/run

.PHONY: staticcheck
staticcheck: ## staticcheck over both modules
	$(STATICCHECK) ./...
	cd service && $(STATICCHECK) ./...

.PHONY: actionlint
actionlint: ## Lint the GitHub workflows (actionlint, with shellcheck on their scripts)
	$(GO) tool actionlint -color=false

# ---- state backend and deploys (need AWS credentials and the pulumi CLI) ----

.PHONY: backend
backend: ## Bootstrap the state backend once per account: S3 bucket, DynamoDB lock table, KMS keys, CI roles
	cd stacks/backend && export PULUMI_BACKEND_URL=$(BACKEND_URL) && \
	  { $(PULUMI) stack select bootstrap 2>/dev/null || $(PULUMI) stack init bootstrap; } && \
	  $(PULUMI) up --stack bootstrap
	@echo; echo "next: make login, then see README 'State backend'"

.PHONY: login
login: ## Log the pulumi CLI in to the S3 state backend made by `make backend`
	$(PULUMI) login "$$(cd stacks/backend && PULUMI_BACKEND_URL=$(BACKEND_URL) $(PULUMI) stack output loginUrl --stack bootstrap)"

.PHONY: preview
preview: ## pulumi preview of STACK (default dev); under the deploy lock when LOCK_TABLE is set
	$(LOCKED) $(PULUMI) preview --stack $(STACK) --diff

.PHONY: up
up: ## pulumi up of STACK; under the deploy lock when LOCK_TABLE is set
	$(LOCKED) $(PULUMI) up --stack $(STACK) $(YES)

.PHONY: destroy
destroy: ## pulumi destroy of STACK; under the deploy lock when LOCK_TABLE is set
	$(LOCKED) $(PULUMI) destroy --stack $(STACK) $(YES)

.PHONY: refresh
refresh: ## pulumi refresh of STACK; under the deploy lock when LOCK_TABLE is set
	$(LOCKED) $(PULUMI) refresh --stack $(STACK) $(YES)

.PHONY: stackcheck
stackcheck: ## Name what STACK's stack file still lacks (secrets provider, encrypted key, required keys); no cloud call
	$(GO) run ./scripts/stackcheck --stack $(STACK)

# The network's URNs: a first deploy from CI creates these alone, so the
# runner can open SSH and the API for itself before the VM is set up.
NETWORK_URN = urn:pulumi:$(STACK)::$(PROJECT)::$(PROJECT):network:AWS
.PHONY: network
network: ## Create only STACK's VPC and security group (the first deploy from CI)
	$(LOCKED) $(PULUMI) up --stack $(STACK) --yes \
	  --target '$(NETWORK_URN)::network' \
	  --target '$(NETWORK_URN)$$aws:ec2/vpc:Vpc::network' \
	  --target '$(NETWORK_URN)$$aws:ec2/securityGroup:SecurityGroup::network'

.PHONY: helpers
helpers: ## Build the deploy helpers (access, stacklock) into bin/; the workflows run these binaries, whose exit codes mean something (go run's are always 1)
	$(GO) build -o bin/ ./scripts/access ./scripts/stacklock

.PHONY: access-open
access-open: ## Open SSH and the API of STACK's VM to your current IP (see README)
	$(GO) run ./scripts/access open --stack $(STACK)

.PHONY: access-close
access-close: ## Close what access-open opened
	$(GO) run ./scripts/access close --stack $(STACK)

.PHONY: bench
bench: ## Benchmark the service beside a bare and a minimal server (wrk, server and load on separate cores, interleaved rounds): req/s, spread, ratios; then PostgreSQL
	scripts/deps.sh bench
	cd service && $(GO) build -o bin/comments ./cmd/comments && \
	  $(GO) run ./cmd/bench -bin bin/comments -duration $(BENCH_TIME) -c $(BENCH_CONC) -rounds $(BENCH_ROUNDS)

.PHONY: bench-profile
bench-profile: ## CPU and allocation profiles and the GC trace of the service under the benchmark's load (service/bench-profile/)
	scripts/deps.sh bench
	cd service && $(GO) run ./cmd/bench -profile bench-profile -duration $(BENCH_TIME) -c $(BENCH_CONC)

.PHONY: clean
clean: ## Remove built binaries
	rm -rf bin service/bin
