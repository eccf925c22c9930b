# The same commands run locally and in CI (.ci/run calls `make test`).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Reinstall when the project's metadata or the lock changes.
INSTALLED := $(VENV)/.installed
# The lock: every runtime (main.txt, what the image installs) and development (dev.txt, what
# `make test` installs) dependency, resolved for every platform and hashed (`make lock`).
LOCK_MAIN := requirements/main.txt
LOCK_DEV := requirements/dev.txt
# What `make bench` adds: dev.txt plus the peer it measures against (the `bench` extra), pinned
# like dev.txt so installing it changes no package `make test` installed.
LOCK_BENCH := requirements/bench.txt
BENCH_INSTALLED := $(VENV)/.bench-installed

# The Helm chart: lint, render for each Kubernetes version and validate every object against the
# strict schemas and the KEDA / Prometheus-operator CRDs, and check its alerting rules with
# promtool (`check rules`, and `test rules` on the chart's rules-tests/) (tools/chartcheck). helm
# and promtool are built with `go install` and the CRDs come from their Go modules, once, into
# the cache; later runs are offline. `make chart CHART=path` checks another chart folder.
CACHE_DIR ?= $(or $(MEETINGS_CACHE_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/meetings-pipeline)
HELM_VERSION := v3.22.0
KEDA_VERSION := v2.21.0
PROMETHEUS_OPERATOR_VERSION := v0.85.0
# Prometheus's Go module numbers release 3.X.Y as v0.3XX.Y.
PROMETHEUS_VERSION := 3.16.0
PROMETHEUS_MODULE_VERSION := v0.316.0
HELM ?= $(CACHE_DIR)/helm-$(HELM_VERSION)/helm
PROMTOOL ?= $(CACHE_DIR)/promtool-$(PROMETHEUS_VERSION)/promtool
CRDS := $(CACHE_DIR)/crds-keda-$(KEDA_VERSION)-prometheus-operator-$(PROMETHEUS_OPERATOR_VERSION)
CHART ?= deploy/helm/meetings

.PHONY: test lint typecheck pytest lock test-deps test-containers chart chart-dry-run helm promtool kafka-jars kafka run bench bench-docs clean

test: lint typecheck chart pytest

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml $(LOCK_DEV) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK_DEV)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	@touch $@

# Re-resolve the lock after changing a range in pyproject.toml; `make lock UPGRADE=1` also moves
# every pin to the newest release the ranges allow. Then `make test` and `make test-deps`.
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --universal --generate-hashes \
  --python-version 3.11 --custom-compile-command "make lock" $(if $(UPGRADE),--upgrade)
lock: $(INSTALLED)
	$(UV_COMPILE) --quiet -o $(LOCK_MAIN)
	$(UV_COMPILE) --quiet --extra dev -c $(LOCK_MAIN) -o $(LOCK_DEV)
	$(UV_COMPILE) --quiet --extra dev --extra bench -c $(LOCK_DEV) -o $(LOCK_BENCH)

# The declared ranges, tested at both ends: for each of the lowest and the highest versions
# pyproject.toml allows (direct dependencies; uv's --resolution), a fresh venv in $(VENV)-<end>
# runs the contract tests (tests/contracts, with the suite's own broker) and the fast suite
# (everything not marked kafka). Needs PyPI; not part of `make test`. Run it before widening a
# range, after `make lock UPGRADE=1`, and when a dependency ships a release.
DEPS_ENDS ?= lowest-direct highest
test-deps: $(INSTALLED) kafka-jars $(HELM) $(PROMTOOL) $(CRDS)/.complete
	@set -e; for end in $(DEPS_ENDS); do \
	  venv=$(VENV)-$$end; \
	  echo "== dependencies at their $$end versions ($$venv)"; \
	  rm -rf $$venv; $(PYTHON) -m venv $$venv; \
	  $(BIN)/uv pip install --quiet --python $$venv/bin/python --resolution $$end -e '.[dev]'; \
	  $(BIN)/uv pip list --python $$venv/bin/python | grep -Ei '^(aiohttp|aiokafka|yarl|msgspec|orjson) '; \
	  $(CHART_TOOLS) $$venv/bin/pytest -q -p no:cacheprovider tests/contracts; \
	  $(CHART_TOOLS) $$venv/bin/pytest -q -p no:cacheprovider -m 'not kafka and not containers'; \
	done

kafka-jars: $(INSTALLED)
	$(BIN)/python -m tools.devkafka --fetch-only

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(INSTALLED)
	$(BIN)/mypy

pytest: $(INSTALLED) kafka-jars $(HELM) $(PROMTOOL) $(CRDS)/.complete
	$(CHART_TOOLS) $(BIN)/pytest $(PYTEST_ARGS)

# What the chart tests (tests/deploy) use, found in the cache by the same names when unset.
CHART_TOOLS = MEETINGS_HELM=$(HELM) MEETINGS_PROMTOOL=$(PROMTOOL) MEETINGS_CHART_CRDS=$(CRDS)

# The Helm chart: see the variables above.
helm: $(HELM)
promtool: $(PROMTOOL)

$(HELM):
	@command -v go >/dev/null || { echo "building helm needs Go (or set HELM=/path/to/helm)" >&2; exit 1; }
	mkdir -p $(@D)
	GOBIN=$(abspath $(@D)) go install \
	  -ldflags "-X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION)" \
	  helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

# remove_all_sd leaves out Prometheus's service-discovery plugins (the cloud providers' SDKs),
# which `check rules` and `test rules` never use: they are most of a full build's time.
$(PROMTOOL):
	@command -v go >/dev/null || { echo "building promtool needs Go (or set PROMTOOL=/path/to/promtool)" >&2; exit 1; }
	mkdir -p $(@D)
	GOBIN=$(abspath $(@D)) go install -tags remove_all_sd \
	  -ldflags "-X github.com/prometheus/common/version.Version=$(PROMETHEUS_VERSION)" \
	  github.com/prometheus/prometheus/cmd/promtool@$(PROMETHEUS_MODULE_VERSION)

$(CRDS)/.complete: | $(INSTALLED)
	$(BIN)/python -m tools.chartcheck.crds $(CRDS) --keda $(KEDA_VERSION) \
	  --prometheus-operator $(PROMETHEUS_OPERATOR_VERSION)

chart: $(INSTALLED) $(HELM) $(PROMTOOL) $(CRDS)/.complete
	$(BIN)/python -m tools.chartcheck $(CHART) --helm $(HELM) --crds $(CRDS) --promtool $(PROMTOOL)

# A server-side dry run of the chart's defaults and every ci/*.yaml against the cluster of the
# current kubeconfig (KUBECTL=..., NAMESPACE=...): the API server's own decoding, validation and
# admission, as `helm install` would meet them; nothing is created.
KUBECTL ?= kubectl
NAMESPACE ?= meetings
chart-dry-run: $(HELM)
	@set -e; for values in "" $(CHART)/ci/*.yaml; do \
	  echo "== $${values:-default values}"; \
	  $(HELM) template meetings $(CHART) --namespace $(NAMESPACE) $${values:+-f $$values} \
	    | $(KUBECTL) apply --dry-run=server --validate=strict --namespace $(NAMESPACE) -f -; \
	done

# Embedded Kafka nodes: 1, or 3 for a cluster with replication 3 and min ISR 2 (`make run BROKERS=3`).
BROKERS ?= 1

# Builds the image, runs docker-compose.yml (a meeting through, three processors, a graceful
# stop) and removes everything it created. Needs `docker compose`, or docker-compose with Docker
# or podman (DOCKER_HOST); host ports 8080 and 9092 must be free. Not part of `make test`.
# COMPOSE_STACK=docker-compose.cluster.yml runs it on the three-broker file (ports 9092-9094).
test-containers: $(INSTALLED)
	$(BIN)/pytest -m containers tests/containers $(PYTEST_ARGS)

# A broker in the foreground on 127.0.0.1:9092, for trying things by hand.
kafka: kafka-jars
	$(BIN)/python -m tools.devkafka --port 9092 --brokers $(BROKERS)

# Kafka (embedded, unless KAFKA_BOOTSTRAP_SERVERS is set), topics, ingest on 127.0.0.1:8080 and
# one processor, in the foreground; Ctrl-C stops everything.
run: $(INSTALLED)
	@if [ -z "$$KAFKA_BOOTSTRAP_SERVERS" ]; then $(BIN)/python -m tools.devkafka --fetch-only; fi
	$(BIN)/python -m tools.devkafka.stack --brokers $(BROKERS)

# Throughput figures, each against a baseline measured in the same run (docs/performance.md).
bench: $(BENCH_INSTALLED)
	$(BIN)/python -m bench

# The same, and the report written into docs/performance.md.
bench-docs: $(BENCH_INSTALLED)
	$(BIN)/python -m bench --write-docs

$(BENCH_INSTALLED): $(INSTALLED) $(LOCK_BENCH)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK_BENCH)
	$(BIN)/python -m pip check
	@touch $@

clean:
	rm -rf $(VENV) $(VENV)-lowest-direct $(VENV)-highest .mypy_cache .ruff_cache .pytest_cache .hypothesis
