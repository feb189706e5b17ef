# Two commands set everything up: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test lint typecheck bench-ingest llm-check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,eval]'
	rm -f $(VENV)/.installed-*
	touch $@

demo: $(STAMP)
	$(BIN)/rag demo

test: $(STAMP)
	$(BIN)/ruff check rag tests benchmarks evals
	$(BIN)/ruff format --check rag tests benchmarks evals
	$(BIN)/mypy rag evals
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check --fix rag tests benchmarks evals
	$(BIN)/ruff format rag tests benchmarks evals

bench-ingest: $(STAMP)
	$(BIN)/python benchmarks/ingest.py

# The LLM path on a real small model served locally (not part of `make test`: 20-40 min on 2 cores).
# LLM_CHECK="--model qwen2.5-coder-1.5b --questions 20" picks another model or sample.
llm-check: $(STAMP)
	$(BIN)/python -m evals.llm_check $(LLM_CHECK)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
