# Two commands: `make demo` and `make test`. Both set up .venv/ on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export GANDIAG_OFFLINE ?= 1

.PHONY: demo test venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch 2.14.1 + torchvision 0.29.1 together: torch-fidelity imports torchvision.
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -e '.[test,onnx,tensorflow,motion,modern,lightning,tensorboard]'
	touch $(STAMP)

DEMO := reports/demo

demo: $(STAMP)
	# 1. Train a small DCGAN on the bundled digits (CPU, a few minutes).
	$(BIN)/gandiag train dcgan --data digits --out $(DEMO)/dcgan-digits --overwrite
	# 2. Evaluate it: metrics on the digits classifier's features, diagnostics, JSON and HTML report.
	$(BIN)/gandiag evaluate $(DEMO)/dcgan-digits/checkpoint.pt --json $(DEMO)/dcgan-digits.json --report $(DEMO)/dcgan-digits.html
	# 3. A PacGAN on the 8-Gaussian ring, evaluated with the mode-collapse protocol.
	$(BIN)/gandiag train gan --pack 4 --data ring8 --out $(DEMO)/gan-pack4-ring8 --overwrite
	$(BIN)/gandiag evaluate $(DEMO)/gan-pack4-ring8/checkpoint.pt --json $(DEMO)/gan-pack4-ring8.json --report $(DEMO)/gan-pack4-ring8.html
	# 4. A sequence GAN: a causal dilated TCN on TimeGAN's sines, with TimeGAN's scores and temporal verdicts.
	$(BIN)/gandiag train tcn-gan --data sines --steps 1000 --out $(DEMO)/tcn-sines --overwrite
	$(BIN)/gandiag evaluate $(DEMO)/tcn-sines/checkpoint.pt -n 1000 --json $(DEMO)/tcn-sines.json --report $(DEMO)/tcn-sines.html
	# 5. A CycleGAN between the digits and the inverted digits: both directions, translation measures and verdicts.
	$(BIN)/gandiag train cyclegan --data digits-inverted --out $(DEMO)/cyclegan-digits-inverted --overwrite
	$(BIN)/gandiag evaluate $(DEMO)/cyclegan-digits-inverted/checkpoint.pt --json $(DEMO)/cyclegan-digits-inverted.json --report $(DEMO)/cyclegan-digits-inverted.html
	# 6. Your own loop: the PyTorch DCGAN tutorial's loop with gandiag.Monitor's three lines (log, checks, alarms).
	$(BIN)/python examples/monitor_dcgan_tutorial.py --out $(DEMO)/monitored-dcgan-tutorial --overwrite
	@echo "demo results and reports are under $(DEMO)/"

test: $(STAMP)
	bash scripts/ensure_chromium.sh
	$(BIN)/python -m pytest -q --durations=25

clean:
	rm -rf $(VENV) reports/demo reports/*.json reports/*.html
