# Everything runs inside .venv, created and filled from pyproject.toml on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
OUT    ?= out
PES    ?= 4
LSTM_PES ?= 8
JOBS   ?= 2
RTL_BUDGET ?= 1800
BOARD  ?= ulx3s-85f

.PHONY: sim test test-fast lint bench synth bitstream synth-sweep formal soak regen-golden clean help

help:
	@echo "make sim    - the built-in digits MLP, then the digits LSTM (ESE): train/load, compress, golden model, RTL"
	@echo "make test   - the full test suite (unit, golden, cocotb on Verilator, synthesis smoke)"
	@echo "make lint   - ruff"
	@echo "make bench  - benchmarks (AlexNet-FC6-sized compression; Verilator speed at 64 PEs; models users bring; the ESE array on 8-32 PEs; the EIE report in build/bench-report/; ~1.5 h)"
	@echo "make synth  - Yosys synthesis of the default array for ECP5"
	@echo "make formal - every formal proof and its broken designs (SymbiYosys; the whole-array liveness check takes ~1 h)"
	@echo "make soak   - 100,000 random cases through the naive reference, the golden model and the RTL (SEED=n for new ones)"
	@echo "make regen-golden - rebuild the golden-output corpus (tests/corpus) and print what changed"
	@echo "make bitstream [BOARD=ulx3s-85f|icebreaker|...] [BOARD_PES=n] - the digits model on a board: sized (the most PEs that fit, or n), compressed, built"
	@echo "make synth-sweep - Fmax and utilisation at 1..64 PEs on the ULX3S 85F and digits on the iCEBreaker (hours)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

sim: $(STAMP)
	$(BIN)/eie digits --out $(OUT)/digits --pes $(PES)
	$(BIN)/eie digits-lstm --out $(OUT)/digits-lstm --pes $(LSTM_PES)

test: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) --durations=15

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) -m "not rtl and not synth and not formal"

lint: $(STAMP)
	$(BIN)/ruff check eie compress hw sim tb tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/compress_alexnet_fc6.py
	$(BIN)/python benchmarks/sim_speed.py
	$(BIN)/python benchmarks/user_models.py
	$(BIN)/python benchmarks/ese_performance.py
	$(BIN)/python benchmarks/eie_report.py --rtl auto --rtl-budget $(RTL_BUDGET) --rtl-check --rtl-depth-check --digits-rtl

bitstream: $(STAMP)
	$(BIN)/eie digits --out $(OUT)/digits --no-rtl
	$(BIN)/eie compress $(OUT)/digits/model.pt --data digits --board $(BOARD) $(if $(BOARD_PES),--pes $(BOARD_PES)) \
		--out $(OUT)/$(BOARD)/images
	$(BIN)/eie build --board $(BOARD) --images $(OUT)/$(BOARD)/images --out $(OUT)/$(BOARD)/bitstream

synth-sweep: $(STAMP)
	$(BIN)/python benchmarks/synth_sweep.py

formal: $(STAMP)
	$(BIN)/python -m eie.tb.formal --workdir build/formal

SEED ?= 1
soak: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) tests/test_random_regression.py -k random_cases_agree \
		--random-cases 100000 --random-seed $(SEED)

regen-golden: $(STAMP)
	$(BIN)/python -m eie.corpus tests/corpus

synth: $(STAMP)
	$(BIN)/eie synth --pes $(PES) --out $(OUT)/synth

clean:
	rm -rf $(OUT) build sim_build .pytest_cache .hypothesis
