# Amber. The two commands a newcomer needs:
#   make demo   runs Amber's main job on an embedded cluster
#   make test   installs what the tests need, then runs the whole suite
SHELL := /bin/bash
GO    ?= go
# Fuzz targets run briefly in `make test`, longer in `make fuzz`. The
# smoke budget is a count of executions, not a duration: a -fuzztime
# duration races Go's fuzzing coordinator at its deadline and fails now
# and then with a bare "context deadline exceeded" and no failing input
# (golang/go#51484, #75804; seen here on FuzzTeeProducePairing).
FUZZ_SMOKE ?= 20000x
FUZZ_LONG  ?= 2m
FUZZ_TARGETS := ./protocol:FuzzFrameAndHeader ./protocol:FuzzRewriteAddresses ./protocol:FuzzSplitBatches ./archive:FuzzTeeProducePairing ./archive:FuzzDecodeIndex ./archive:FuzzSegmentBlock ./archive:FuzzBatchLogRecords

.PHONY: build demo test test-deps vet unit fuzz-smoke fuzz bench helm-lint image clean

build:
	$(GO) build -o bin/amber ./cmd/amber

demo:
	$(GO) run ./cmd/amber demo

# kcat, the Python clients and KafkaJS for the external-client tests.
test-deps:
	scripts/test-deps.sh

# CI=true turns a missing external tool into a failure instead of a skip:
# test-deps has just installed them.
test: test-deps vet fuzz-smoke unit

vet:
	$(GO) vet ./...

# The race detector slows the proxy several times over, so the benchmark
# harnesses' smoke tests (which check that every figure is plausible in a
# few hundred milliseconds) run without it.
unit:
	CI=true $(GO) test -race -count=1 -timeout 20m $$($(GO) list ./... | grep -v /bench)
	CI=true $(GO) test -count=1 -timeout 10m ./bench/...

fuzz-smoke:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$fn ($(FUZZ_SMOKE))"; \
		out=$$($(GO) test $$pkg -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZ_SMOKE) 2>&1) || { echo "$$out"; exit 1; }; \
	done

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		$(GO) test $$pkg -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZ_LONG); \
	done

# Each runner prints a table of ratios against a baseline measured in the
# same run; docs/BENCHMARKS*.md hold recorded runs.
bench:
	$(GO) run ./bench/cmd/amber-bench
	$(GO) run ./bench/cmd/amber-archive-bench
	$(GO) run ./bench/cmd/amber-restore-bench
	$(GO) run ./bench/cmd/amber-completeness-bench

# Lint the chart in both modes (Helm from scripts/test-deps.sh).
helm-lint: test-deps
	.tools/bin/helm lint --strict deploy/helm/amber -f deploy/helm/amber/ci/gateway-values.yaml
	.tools/bin/helm lint --strict deploy/helm/amber -f deploy/helm/amber/ci/sidecar-values.yaml

# The container image (needs a Docker engine with BuildKit).
IMAGE ?= amber:dev
image:
	docker build -f deploy/Dockerfile -t $(IMAGE) .

clean:
	rm -rf bin
