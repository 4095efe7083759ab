# Two commands: `make demo` (set up + run the default evolution) and `make test`.
# Both create .venv if needed and install the project with the pinned torch/torchvision.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.xdream-installed
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt

.PHONY: install demo test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e '.[test]'
	# The DCGAN face weights ship inside gan-face-generate; its own dependencies
	# (wandb, rdkit, moviepy, ...) are never used, so it is installed without them.
	$(PIP) --no-deps gan-face-generate
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/xdream evolve $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python experiments/bench_loop.py

clean:
	rm -rf $(VENV) runs .pytest_cache
