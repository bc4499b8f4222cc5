# Newcomer entry points: `make run` (main job) and `make test` (test suite).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install run test test-all lint docs

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0          # CPU build first: a plain range would pull CUDA
	$(PY) -m pip install -q -e '.[test]'
	@for tool in iverilog verilator; do command -v $$tool >/dev/null \
	  || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq $$tool; } \
	  || echo "note: $$tool not installed; the tests that simulate with it will be skipped"; done
	touch $@

install: $(VENV)/.installed

run: install   # the whole flow: trace, Verilog, Yosys area, performance model
	$(VENV)/bin/focus flow

test: install
	$(PY) -m pytest -n 2 -q

test-all: install
	$(PY) -m pytest -n 2 -q -m ''

lint: install   # to fix: ruff check --fix . && ruff format .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

$(VENV)/.docs-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[docs]'
	touch $@

docs: $(VENV)/.docs-installed   # HTML into build/docs; warnings are errors
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs build/docs
