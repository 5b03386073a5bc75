# permbench: `make demo` sets everything up and runs the default suite; `make test` sets
# everything up and runs the tests. Both work on a fresh Debian 12 / Ubuntu machine.
PYTHON ?= python3
WITH_MKL ?= 0
WITH_REFERENCE ?= 0
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test test-fast asv-quick clean
setup: $(VENV)/.setup-done

$(VENV)/.setup-done: scripts/setup.sh requirements.txt requirements-mkl.txt requirements-reference.txt pyproject.toml
	PYTHON=$(PYTHON) VENV=$(VENV) WITH_MKL=$(WITH_MKL) WITH_REFERENCE=$(WITH_REFERENCE) bash scripts/setup.sh
	touch $@

demo: setup
	$(BIN)/permbench run --out results/runs/default-suite.parquet
	$(BIN)/permbench report results/runs/default-suite.parquet

test: setup
	$(BIN)/python -m pytest -q -rs

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

# asv smoke check: every benchmark once, in this environment (CI runs it after the tests).
asv-quick: setup
	$(BIN)/asv machine --yes >/dev/null
	$(BIN)/asv run --python=same --quick --show-stderr

clean:
	rm -rf $(VENV) build *.egg-info
