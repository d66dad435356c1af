# Every workflow of splynx-ippay. A fresh Debian 12 machine needs only `make demo` and
# `make test`; each installs what it needs (Debian packages with apt-get, Python packages
# in .venv pinned to the versions Debian 12 ships).

PYTHON_SYSTEM ?= /usr/bin/python3
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := python3-venv nginx-light sqlite3
STAMP_APT := $(VENV)/.apt-stamp
STAMP_PY := $(VENV)/.deps-stamp

.PHONY: demo test test-fast bench deps clean

$(STAMP_APT):
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@mkdir -p $(VENV) && touch $@

$(STAMP_PY): $(STAMP_APT) requirements/debian12.txt requirements/test.txt setup.py
	@[ -x $(PY) ] || $(PYTHON_SYSTEM) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements/debian12.txt -r requirements/test.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

deps: $(STAMP_PY)

## The demo: Splynx emulator, IPpay simulator and the add-on behind nginx, seeded, on SQLite.
demo: deps
	$(PY) -m sandbox.stack

## Every suite.
test: deps
	$(PY) -m pytest -q

bench: deps
	$(PY) -m bench

clean:
	rm -rf $(VENV) .demo build dist *.egg-info tests/artifacts
