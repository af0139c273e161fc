# Two entry points that work on a fresh machine: `make demo` and `make test`.
# Both create .venv on first use; torch is pinned by constraints.txt (CPU wheel on local disk).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The rest regenerates what is committed, on this 2-core CPU (see README):
#   make corpus    the synthetic corpus and its cache under data/ (~25 min)
#   make weights   train the shipped small models with one budget (hours; resumable) and ship them
#   make results   Table 1, ablation, per-emotion gains, figures, BD-rate, person prior -> results/
#   make realfaces the real-face validation set (shipped portraits) and every shipped model on it -> results/realfaces/
DATA := data/cache
SHIPPED := bicubic dbpn edvr mmsd mmsd-gan mmsd-image mmsd-audio mmsd-lowlatency mmsd-real

.PHONY: demo test venv dist clean corpus weights results realfaces

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mmsd demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# A wheel and an sdist in dist/ with the shipped models inside (mmsd/shipped/, package data):
# `pip install dist/mmsd-*.whl -c constraints.txt` gives a tool that runs from any folder.
dist: $(STAMP)
	rm -rf dist build
	$(BIN)/python -m build --outdir dist .
	rm -rf build

corpus: $(STAMP)
	$(BIN)/mmsd synth --out data/synth --workers 2
	$(BIN)/mmsd prepare data/synth --out $(DATA) --workers 2

weights: $(STAMP)
	$(BIN)/python scripts/train_shipped.py --data $(DATA)
	$(BIN)/python scripts/train_shipped.py --ship

results: $(STAMP)
	$(BIN)/mmsd eval --data $(DATA) --models $(SHIPPED) --table1 bicubic dbpn edvr mmsd \
		--ablation mmsd-image mmsd-audio mmsd mmsd-gan --gain mmsd:edvr mmsd:mmsd-image mmsd-lowlatency:mmsd \
		--bd-rate --out results
	$(BIN)/mmsd finetune --from mmsd --actor 19 20 21 22 23 24 --data $(DATA) --out runs/prior
	cp runs/prior/prior.md runs/prior/prior.json results/

realfaces: $(STAMP)
	$(BIN)/mmsd content portraits --out data/portraits
	$(BIN)/mmsd eval --data data/portraits --actors 1-2 --models $(SHIPPED) --frame-step 2 \
		--table1 $(SHIPPED) --ablation mmsd-image mmsd-audio mmsd mmsd-gan --out results/realfaces

clean:
	rm -rf $(VENV) *.egg-info dist build
