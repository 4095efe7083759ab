# Two commands: `make demo` (set up + run the default evolution) and `make test`.
# Both create .venv if needed and install the project with the pinned torch/torchvision.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.xdream-installed
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt
# Two pytest workers (pytest-xdist), each test file on one worker so its module fixtures are
# built once: the suite waits on sockets, subprocesses and rigs as much as it computes. The 20
# slowest tests are listed at the end: where to look when the suite grows slow.
PYTEST_ARGS ?= -n 2 --dist loadfile --durations=20

.PHONY: install demo test bench clean browser octave

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# [biggan]: the pytorch-pretrained-biggan package, only for the test that compares its images with ours;
	# [peers]: nevergrad, the benchmark's off-the-shelf peers (and their contract tests)
	# [lsl]: pylsl, rigkit's Lab Streaming Layer source (spike counts from the acquisition system)
	$(PIP) -e '.[test,biggan,peers,lsl]'
	# The DCGAN face weights ship inside gan-face-generate; its own dependencies
	# (wandb, rdkit, moviepy, ...) are never used, so it is installed without them.
	$(PIP) --no-deps gan-face-generate
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/xdream evolve $(ARGS)

test: $(STAMP) browser octave
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Headless Chromium for the report test (a Debian package; skipped where it cannot be installed).
browser:
	@command -v chromium-headless-shell >/dev/null || command -v chromium >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium-headless-shell >/dev/null; } || \
	  echo "chromium-headless-shell not installed: the report's browser test will be skipped"

# GNU Octave with its ZeroMQ package (experiments/rig_octave) and its instrument-control package
# (TCP sockets for the binding-free ZeroMQ link, experiments/rig_matlab) for the MATLAB-language
# rigs' tests (Debian packages; skipped where they cannot be installed).
octave:
	@{ command -v octave-cli >/dev/null && octave-cli --eval "pkg load zeromq; pkg load instrument-control" >/dev/null 2>&1; } || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq octave octave-zeromq octave-instrument-control >/dev/null; } || \
	  echo "octave + octave-zeromq + octave-instrument-control not installed: the Octave rigs' tests will be skipped"

bench: $(STAMP)
	$(BIN)/python experiments/bench_loop.py

clean:
	rm -rf $(VENV) runs .pytest_cache
