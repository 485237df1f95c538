# `make run`: create .venv if missing, install, run every law in quick mode (the almanac).
# `make test`: create .venv if missing, install, run the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-kernels bench-ntk bench-sharpness clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/lmech almanac --quick

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

bench: $(STAMP)
	$(BIN)/python bench/ensemble_speed.py

# analytic kernels vs neural-tangents; the peer venv comes from ../shared/peers/setup_venv.sh (PEERS=/tmp/peers)
bench-kernels: $(STAMP)
	$(BIN)/python bench/kernel_speed.py --peers $(or $(PEERS),/tmp/peers)

bench-ntk: $(STAMP)
	$(BIN)/python bench/ntk_speed.py --peers $(or $(PEERS),/tmp/peers)

bench-sharpness: $(STAMP)
	$(BIN)/python bench/sharpness_speed.py --peers $(or $(PEERS),/tmp/peers)

clean:
	rm -rf $(VENV) lmech-runs
