# Every install step lives here: a fresh machine needs only python3 (>= 3.11) and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_OUT := demo-output

.PHONY: demo test lint bench bench-ascend clean sample-real sample-real-gloo samples check-wheel

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

$(VENV)/.bench-installed: pyproject.toml | $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/python -m traceview.demo $(DEMO_OUT)

test: $(VENV)/.installed
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(VENV)/.bench-installed
	$(BIN)/python benchmarks/ingest.py

# torch is large and only needed to regenerate the real CPU sample; extra pip arguments
# (e.g. a version pin) go in TORCH_PIP_ARGS.
TORCH_PIP_ARGS ?=

$(VENV)/.torch-installed: pyproject.toml | $(VENV)/.installed
	$(BIN)/python -m pip install -q $(TORCH_PIP_ARGS) -e '.[test,torch]'
	touch $@

# Regenerates sample_traces/real_cpu/{tiny_decoder_cpu.pt.trace.json.gz,truth.json} (a real CPU profile).
sample-real: $(VENV)/.torch-installed
	$(BIN)/python sample_traces/real_cpu/make_trace.py

# Regenerates sample_traces/real_gloo/{gloo_rank*.pt.trace.json.gz,truth.json} (4 real CPU processes, gloo).
sample-real-gloo: $(VENV)/.torch-installed
	$(BIN)/python sample_traces/real_gloo/make_trace.py

# Rewrites the synthetic samples (sample_traces/*/) from their recorded specs and seeds.
samples: $(VENV)/.installed
	$(BIN)/python -m sample_traces.synth regenerate

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .ruff_cache

# The wheel as a user gets it: built, installed with its dependencies into a fresh venv, the demo run there.
check-wheel: $(VENV)/.installed
	rm -rf build/wheel-check && mkdir -p build/wheel-check
	$(BIN)/python -m pip wheel --no-deps --no-build-isolation -q -w build/wheel-check .
	$(PYTHON) -m venv build/wheel-check/venv
	build/wheel-check/venv/bin/python -m pip install -q build/wheel-check/traceview-*.whl
	cd build/wheel-check && venv/bin/python -m traceview.demo demo-out
