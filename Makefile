# Two entry points for a fresh machine with only Python and make:
#   make demo   — create/reuse .venv and run `intrain demo`
#   make test   — create/reuse .venv and run the fast test suite
PYTHON ?= python3
VENV   ?= .venv
# The torch installed when the venv has none. Pinned: an unpinned torch pulls a multi-GB CUDA build.
TORCH  ?= torch==2.13.0
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.intrain-installed

.PHONY: demo test test-all venv clean extra

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/intrain demo

# An optional extra (make extra EXTRA=vision, or timm, onnx, lightning, tensorboard) that keeps the installed torch:
# torch is pinned to its own version, so pip picks a matching torchvision or says which versions conflict.
EXTRA ?= vision
extra: $(STAMP)
	$(PY) -m pip install -e ".[$(EXTRA)]" "torch==$$($(PY) -c 'import torch; print(torch.__version__.split("+")[0])')"

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ""

clean:
	rm -rf $(VENV) runs
