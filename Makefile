# Everything runs inside .venv, created and filled from pyproject.toml on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
OUT    ?= out
PES    ?= 4
JOBS   ?= 2

.PHONY: sim test test-fast lint bench synth clean help

help:
	@echo "make sim    - train/load the built-in digits model, compress it, run golden model and RTL"
	@echo "make test   - the full test suite (unit, golden, cocotb on Verilator, synthesis smoke)"
	@echo "make lint   - ruff"
	@echo "make bench  - benchmarks (AlexNet-FC6-sized compression; RTL cycles vs ideal, queue sweep, Verilator speed; models users bring; ~30 min)"
	@echo "make synth  - Yosys synthesis of the default array for ECP5"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

sim: $(STAMP)
	$(BIN)/eie digits --out $(OUT)/digits --pes $(PES)

test: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) --durations=15

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) -m "not rtl and not synth"

lint: $(STAMP)
	$(BIN)/ruff check eie compress hw sim tb tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/compress_alexnet_fc6.py
	$(BIN)/python benchmarks/rtl_performance.py
	$(BIN)/python benchmarks/user_models.py

synth: $(STAMP)
	$(BIN)/eie synth --pes $(PES) --out $(OUT)/synth

clean:
	rm -rf $(OUT) build sim_build .pytest_cache .hypothesis
