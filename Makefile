# farcall: one virtual environment with every distribution of this repository installed
# editable, plus .venv-compat with the official globus-compute-sdk for compatibility tests.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
COMPAT := .venv-compat
COMPAT_SDK := globus-compute-sdk==4.19.*
# Peers measured by make bench that farcall does not depend on, in a venv of their own.
PEERS := .venv-peers
PEER_PACKAGES := celery[redis]==5.*
BENCH_ENV := FARCALL_COMPAT_PYTHON=$(CURDIR)/$(COMPAT)/bin/python FARCALL_PEERS_PYTHON=$(CURDIR)/$(PEERS)/bin/python

# Every distribution in the repository, installed editable with its test extras.
DISTRIBUTIONS := core testkit plugins/serializer_dill plugins/serializer_source plugins/serializer_cloudpickle plugins/serializer_msgpack endpoint plugins/engine_parsl plugins/engine_dask plugins/cache_sqlite service plugins/broker_rabbitmq plugins/dev plugins/auth_native plugins/auth_client_creds
PYPROJECTS := $(addsuffix /pyproject.toml,$(DISTRIBUTIONS))

.PHONY: install compat peers test soak demo demo-scale bench bench-quick bench-compare lint clean

install: $(VENV)/.installed

$(VENV)/.installed: $(PYPROJECTS) Makefile
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "farcall needs Python 3.10+"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(foreach d,$(DISTRIBUTIONS),-e '$(d)[test]')
	touch $@

compat: $(COMPAT)/.installed

$(COMPAT)/.installed: Makefile
	test -x $(COMPAT)/bin/python || $(PYTHON) -m venv $(COMPAT)
	$(COMPAT)/bin/python -m pip install --quiet --upgrade pip
	$(COMPAT)/bin/python -m pip install --quiet '$(COMPAT_SDK)'
	touch $@

peers: $(PEERS)/.installed

$(PEERS)/.installed: Makefile
	test -x $(PEERS)/bin/python || $(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS)/bin/python -m pip install --quiet '$(PEER_PACKAGES)'
	touch $@

# The suite on pytest-xdist workers: most tests wait on processes and servers rather than
# the CPU, so more workers than cores pay. Each test module runs whole on one worker, so
# a module's shared fixtures start once and its tests keep their order; the tests that
# need port 5000 take turns (farcall_testkit.official_endpoint.port_turn).
# PYTEST_WORKERS=0 runs everything in one process.
PYTEST_WORKERS ?= 4

test: install compat
	FARCALL_COMPAT_PYTHON=$(CURDIR)/$(COMPAT)/bin/python $(BIN)/python -m pytest \
		-n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The long form of tests/reliability, tests/scale and tests/official_endpoint: larger
# batches, longer load, more fuzzing; prints the figures (tasks, faults, losses,
# duplicates, 5xx, latencies) at the end.
soak: install compat
	FARCALL_SOAK=1 FARCALL_COMPAT_PYTHON=$(CURDIR)/$(COMPAT)/bin/python $(BIN)/python -m pytest tests/reliability tests/scale tests/official_endpoint $(PYTEST_ARGS)

demo: install
	$(BIN)/python examples/demo.py

# The demo against three service processes on PostgreSQL and RabbitMQ (a scratch
# database and vhost, removed at the end); says what to start when a server is missing.
demo-scale: install
	$(BIN)/python examples/demo_scale.py

# scale.py needs PostgreSQL, RabbitMQ (with its management API) and Redis on loopback.
bench: install compat peers
	$(BENCH_ENV) $(BIN)/python benchmarks/serialize.py
	$(BENCH_ENV) $(BIN)/python benchmarks/e2e.py
	$(BENCH_ENV) $(BIN)/python benchmarks/scale.py
	$(BENCH_ENV) $(BIN)/python benchmarks/dashboard.py

bench-quick: install compat peers
	$(BENCH_ENV) $(BIN)/python benchmarks/serialize.py --quick
	$(BENCH_ENV) $(BIN)/python benchmarks/e2e.py --quick
	$(BENCH_ENV) $(BIN)/python benchmarks/scale.py --quick
	$(BENCH_ENV) $(BIN)/python benchmarks/dashboard.py --quick

# Two commits' speed taking turns round by round, each in its own venv under
# benchmarks/.venvs/ (built on first use): BASE is the old commit, NEW the new one (the
# working tree when empty); BENCH_ARGS passes options on (--quick, --rounds 9, --strict).
BASE ?= 3919f90
NEW ?=

bench-compare:
	$(PYTHON) benchmarks/compare_commits.py --base $(BASE) $(if $(NEW),--new $(NEW)) $(BENCH_ARGS)

# ruff and the type checker over every distribution (.ci/run runs this before the tests).
LINT_TOOLS := ruff==0.17.6 mypy==2.4.1
MYPY_SOURCES := $(foreach d,$(DISTRIBUTIONS),$(d)/src)

lint: install
	$(BIN)/python -m pip install --quiet $(LINT_TOOLS)
	$(BIN)/ruff check .
	$(BIN)/mypy $(MYPY_SOURCES)

clean:
	rm -rf $(VENV) $(COMPAT) $(PEERS) build dist .pytest_cache
