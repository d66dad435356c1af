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
# deployment, which is Debian 12's), less the minutes-long scenarios (marker "long").
COMPAT_SUITES := tests/unit tests/integration tests/sandbox tests/journal tests/flow tests/cli \
	tests/registration
LINT_PATHS := splynx_ippay sandbox tests bench

.PHONY: demo test check lint catalogues test-latest test-suites test-package test-package-deps bench deps apt-deps \
	clean deb deb-deps deb-stdeb dist repo

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

deps: apt-deps $(STAMP_PY) catalogues

## The customer pages' compiled catalogues (docs/portal.md "Languages").
catalogues: $(STAMP_PY)
	$(PY) -m babel.messages.frontend -q compile -d splynx_ippay/translations

## The demo: Splynx emulator, IPpay simulator and the add-on behind nginx, seeded, on SQLite.
demo: deps
	$(PY) -m sandbox.stack

## Every suite, on Debian 12's versions; then the core suites again on the newest releases.
## Both runs get a MariaDB and a PostgreSQL from .ci/test-databases.py: the servers already on
## loopback, or private instances it installs and starts for the run (and stops after). The
## package suite boots Debian 12 containers (systemd-nspawn) and installs nothing here.
TEST_DATABASES = $(PY) .ci/test-databases.py --

test: deps test-package-deps $(STAMP_LATEST) lint check
	$(TEST_DATABASES) $(MAKE) --no-print-directory test-suites

## The fast loop (README "Working on the code"): the unit tests, no servers, seconds.
check: deps
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

## The linter configured in ruff.toml, over the whole tree; must be clean.
lint: deps
	$(PY) -m ruff check $(LINT_PATHS)

test-suites:
	$(PY) -m pytest -q
	$(VENV_LATEST)/bin/python -m pytest -q -p no:cacheprovider -m "not long" $(COMPAT_SUITES)

test-latest: deps $(STAMP_LATEST)
	$(TEST_DATABASES) $(VENV_LATEST)/bin/python -m pytest -q -p no:cacheprovider -m "not long" $(COMPAT_SUITES)

## The package suite alone (tests/package, docs/packaging.md): builds, then installs, upgrades
## and purges in containers booted with systemd, and runs piuparts.
test-package: deps test-package-deps
	$(PY) -m pytest -q tests/package

# What the package suite needs on this machine: the build tools (deb-deps) and the means to
# make and boot Debian containers, piuparts and stdeb.
PACKAGE_TEST_PACKAGES := systemd-container debootstrap piuparts python3-stdeb zstd
test-package-deps: deb-deps
	@missing=""; for p in $(PACKAGE_TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $$missing >/dev/null; \
	fi

bench: deps
	$(PY) -m bench

## The Debian package (docs/packaging.md): built with dpkg-buildpackage from a clean copy of
## the source tree, then checked by lintian, which must report no error and no warning.
## Results in $(DIST)/. The copy: in a git checkout its tracked and new files (nothing
## .gitignore'd); in an unpacked release tarball (make dist), the tree less VCS data and the
## build leftovers .gitignore lists.
DIST ?= dist
DEB_BUILD_DIR ?= build/deb
DEB_BUILD_PACKAGES := debhelper dh-python python3-all python3-setuptools python3-babel \
	po-debconf dpkg-dev fakeroot lintian apt-utils
LINTIAN ?= lintian --fail-on error,warning
VERSION := $(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog)
TREE_EXCLUDES := --exclude-vcs --exclude='./.venv*' --exclude=./.demo --exclude=./build \
	--exclude=./dist --exclude=./repo --exclude='./*.egg-info' --exclude=__pycache__ \
	--exclude='*.pyc' --exclude=./tests/artifacts --exclude=./.pytest_cache \
	--exclude=./debian/.debhelper --exclude=./debian/splynx-ippay --exclude=./debian/files \
	--exclude='./debian/*.substvars' --exclude='./debian/*.debhelper.log' \
	--exclude=./deb_dist --exclude='./splynx-ippay-*.tar.gz'
# $(call copy_tree,DIRECTORY): the source tree, copied into DIRECTORY (which exists).
copy_tree = if [ -e .git ]; then \
		git ls-files -z --cached --others --exclude-standard \
		| xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' \
		| tar --null -T - -cf -; \
	else tar $(TREE_EXCLUDES) -cf - .; fi | tar -xf - -C $(1)

deb-deps:
	@missing=""; for p in $(DEB_BUILD_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

deb: deb-deps
	rm -rf $(DEB_BUILD_DIR) && mkdir -p $(DEB_BUILD_DIR)/splynx-ippay $(DIST)
	$(call copy_tree,$(DEB_BUILD_DIR)/splynx-ippay)
	cd $(DEB_BUILD_DIR)/splynx-ippay && dpkg-buildpackage -us -uc --build=full
	rm -f $(DIST)/splynx-ippay_*
	mv $(DEB_BUILD_DIR)/splynx-ippay_* $(DIST)/
	$(LINTIAN) $(DIST)/splynx-ippay_*.changes
	@echo "built: $$(ls $(DIST)/*.deb)"

## A release tarball of the source: $(DIST)/splynx-ippay-<version>.tar.gz, the same files
## make deb builds from, in one directory splynx-ippay-<version>/ (reproducible: sorted,
## owned by root, dated by debian/changelog). `make deb` works in it unpacked.
dist: deb-deps
	rm -rf $(DEB_BUILD_DIR)/dist && mkdir -p $(DEB_BUILD_DIR)/dist/splynx-ippay-$(VERSION) $(DIST)
	$(call copy_tree,$(DEB_BUILD_DIR)/dist/splynx-ippay-$(VERSION))
	tar -C $(DEB_BUILD_DIR)/dist --sort=name --owner=0 --group=0 --numeric-owner \
		--mtime="$$(dpkg-parsechangelog -S Date)" -cf - splynx-ippay-$(VERSION) \
		| gzip -9n > $(DIST)/splynx-ippay-$(VERSION).tar.gz
	rm -rf $(DEB_BUILD_DIR)/dist
	@echo "tarball: $(DIST)/splynx-ippay-$(VERSION).tar.gz"

## The same package built by stdeb (docs/packaging.md: the dh build above is the reference):
## `setup.py --command-packages=stdeb.command bdist_deb` with stdeb.cfg, reusing debian/.
## lintian as for make deb, less one tag: stdeb's own changelog ("automatically created by
## stdeb", revision -1) reads as an initial upload that closes no ITP bug.
deb-stdeb: deb-deps
	@dpkg -s python3-stdeb >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-stdeb >/dev/null; }
	rm -rf $(DEB_BUILD_DIR) && mkdir -p $(DEB_BUILD_DIR)/splynx-ippay $(DIST)
	$(call copy_tree,$(DEB_BUILD_DIR)/splynx-ippay)
	cd $(DEB_BUILD_DIR)/splynx-ippay && SOURCE_DATE_EPOCH=$$(dpkg-parsechangelog -S Timestamp) \
		/usr/bin/python3 setup.py --command-packages=stdeb.command bdist_deb
	rm -f $(DIST)/splynx-ippay_*
	cp $(DEB_BUILD_DIR)/splynx-ippay/deb_dist/splynx-ippay_*_all.deb $(DIST)/
	$(LINTIAN) --suppress-tags initial-upload-closes-no-bugs $(DIST)/splynx-ippay_*_all.deb
	@echo "built with stdeb: $$(ls $(DIST)/*.deb)"

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
	rm -rf $(VENV) $(VENV_LATEST) .demo build dist repo deb_dist *.egg-info tests/artifacts
