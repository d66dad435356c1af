# Every workflow of splynx-ippay. A fresh Debian 12 machine needs only `make demo` and
# `make test`; each installs what it needs (Debian packages with apt-get, Python packages
# in .venv pinned to the versions Debian 12 ships).

PYTHON_SYSTEM ?= /usr/bin/python3
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := python3-venv nginx-light sqlite3
STAMP_PY := $(VENV)/.deps-stamp
# A second environment with the newest releases (Flask 3, SQLAlchemy 2): the code must keep
# working there too.
VENV_LATEST ?= .venv-latest
STAMP_LATEST := $(VENV_LATEST)/.deps-stamp
PIP_INSTALL := -m pip install -q --disable-pip-version-check
# The suites that run again on the newest releases (browser and package suites test the
# deployment, which is Debian 12's).
COMPAT_SUITES := tests/unit tests/sim tests/clients tests/journal tests/flow tests/cli

.PHONY: demo test test-latest bench deps apt-deps clean

# Checked on every run (it is quick), so a package added to the list is installed.
apt-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP_PY): requirements/debian12.txt requirements/test.txt setup.py | apt-deps
	@[ -x $(PY) ] || $(PYTHON_SYSTEM) -m venv $(VENV)
	$(PY) $(PIP_INSTALL) -r requirements/debian12.txt -r requirements/test.txt
	$(PY) $(PIP_INSTALL) --no-deps -e .
	@touch $@

$(STAMP_LATEST): requirements/latest.txt requirements/test.txt setup.py | apt-deps
	@[ -x $(VENV_LATEST)/bin/python ] || $(PYTHON_SYSTEM) -m venv $(VENV_LATEST)
	$(VENV_LATEST)/bin/python $(PIP_INSTALL) --upgrade -r requirements/latest.txt -r requirements/test.txt
	$(VENV_LATEST)/bin/python $(PIP_INSTALL) --no-deps -e .
	@touch $@

deps: apt-deps $(STAMP_PY)

## The demo: Splynx emulator, IPpay simulator and the add-on behind nginx, seeded, on SQLite.
demo: deps
	$(PY) -m sandbox.stack

## Every suite, on Debian 12's versions; then the core suites again on the newest releases.
test: deps test-latest
	$(PY) -m pytest -q

test-latest: apt-deps $(STAMP_LATEST)
	$(VENV_LATEST)/bin/python -m pytest -q -p no:cacheprovider $(COMPAT_SUITES)

bench: deps
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(VENV_LATEST) .demo build dist *.egg-info tests/artifacts
