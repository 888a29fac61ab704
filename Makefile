# Two entry points, both self-contained on a fresh machine:
#   make demo   set up, train a small char-RNN on Shakespeare, print generated text
#   make test   set up, run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
# torch first, pinned: 2.13.0 is the CPU wheel here; an unpinned torch pulls a multi-GB CUDA build.
TORCH ?= torch==2.13.0
DEMO_DIR ?= runs/demo
# make test spreads the test files over one pytest-xdist worker per core (each computing on one thread, see
# tests/conftest.py); a file stays on one worker, so its module fixtures are built once. TEST_WORKERS=0: one process.
TEST_WORKERS ?= auto

.PHONY: setup demo test test-seeds test-slow

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

demo: setup
	$(VENV)/bin/zoo fit --config configs/char_rnn/shakespeare_stateful.yaml \
		--data.source shakespeare --trainer.max_time 00:00:03:00 \
		--trainer.val_check_interval 100 --trainer.limit_val_batches 20 \
		--trainer.logger.init_args.save_dir $(DEMO_DIR)
	$(VENV)/bin/zoo generate --checkpoint "$$(ls -t $(DEMO_DIR)/*/*/checkpoints/last.ckpt | head -1)" \
		--prompt "ROMEO:" --length 400 --temperature 0.8

test: setup
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# The training tests must pass on any CPU: run them under three other seeds and on one thread.
test-seeds: setup
	for seed in 1 2 3; do ZOO_TEST_SEED=$$seed $(PY) -m pytest -q -m trains || exit 1; done
	ZOO_TEST_THREADS=1 $(PY) -m pytest -q -m trains

# Tests too slow for the default run (marked slow; the default run must stay under 6 minutes on 2 cores): the
# real-Multi30k DDP run, two "nodes" (torchrun, SLURM), resuming on another number of processes, DDP char
# windows and the bucketed Transformer under DDP, a stateful resume from an epoch's end, the stateless char-RNN's
# exact resume, `zoo fit` then `zoo test` of a Transformer (~6 min in all).
test-slow: setup
	$(PY) -m pytest -q -m slow
