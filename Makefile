# Every workflow of splynx-ippay. A fresh Debian 12 machine needs only `make demo` and
# `make test`; each installs what it needs (Debian packages with apt-get, Python packages
# in .venv pinned to the versions Debian 12 ships).

PYTHON_SYSTEM ?= /usr/bin/python3
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := python3-venv nginx-light sqlite3 chromium
STAMP_PY := $(VENV)/.deps-stamp
# A second environment with the newest releases (Flask 3, SQLAlchemy 2): the code must keep
# working there too.
VENV_LATEST ?= .venv-latest
STAMP_LATEST := $(VENV_LATEST)/.deps-stamp
PIP_INSTALL := -m pip install -q --disable-pip-version-check
# The suites that run again on the newest releases (browser and package suites test the
# deployment, which is Debian 12's).
COMPAT_SUITES := tests/unit tests/sim tests/clients tests/journal tests/flow tests/cli tests/registration

.PHONY: demo test test-latest bench deps apt-deps clean deb deb-deps repo

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

## The Debian package (docs/packaging.md): built with dpkg-buildpackage from a clean copy of
## the checkout (tracked and new files, nothing .gitignore'd), then checked by lintian, which
## must report no error and no warning. Results in $(DIST)/.
DIST ?= dist
DEB_BUILD_DIR ?= build/deb
DEB_BUILD_PACKAGES := debhelper dh-python python3-all python3-setuptools po-debconf \
	dpkg-dev fakeroot lintian apt-utils
LINTIAN ?= lintian --fail-on error,warning

deb-deps:
	@missing=""; for p in $(DEB_BUILD_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

deb: deb-deps
	rm -rf $(DEB_BUILD_DIR) && mkdir -p $(DEB_BUILD_DIR)/splynx-ippay $(DIST)
	git ls-files -z --cached --others --exclude-standard \
		| xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' \
		| tar --null -T - -cf - | tar -xf - -C $(DEB_BUILD_DIR)/splynx-ippay
	cd $(DEB_BUILD_DIR)/splynx-ippay && dpkg-buildpackage -us -uc --build=full
	rm -f $(DIST)/splynx-ippay_*
	mv $(DEB_BUILD_DIR)/splynx-ippay_* $(DIST)/
	$(LINTIAN) $(DIST)/splynx-ippay_*.changes
	@echo "built: $$(ls $(DIST)/*.deb)"

## A local apt repository in $(REPO)/ holding the package; add the printed line to
## /etc/apt/sources.list.d/ and `apt-get update && apt-get install splynx-ippay`.
REPO ?= repo
repo: deb
	mkdir -p $(REPO) && rm -f $(REPO)/splynx-ippay_*.deb
	cp $(DIST)/splynx-ippay_*.deb $(REPO)/
	cd $(REPO) && dpkg-scanpackages --multiversion . /dev/null > Packages 2>/dev/null \
		&& gzip -9nc Packages > Packages.gz && apt-ftparchive release . > Release
	chmod -R a+rX $(REPO)
	@echo "deb [trusted=yes] file:$(abspath $(REPO)) ./"

clean:
	rm -rf $(VENV) $(VENV_LATEST) .demo build dist repo *.egg-info tests/artifacts
