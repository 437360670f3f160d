# Installs skiff-core into a root filesystem. This is the one place the on-device layout is
# defined: Buildroot's packages (buildroot_ext/), the end-to-end device image and
# test/integration/install.test.ts all go through these targets.
#
#   make build                          npm ci + npm run build -> dist/skiff-core.mjs (needs the npm
#                                       registry; Buildroot never runs this, see buildroot_ext/)
#   make check-bundle                   fail with instructions when dist/skiff-core.mjs is missing
#   make launcher                       compile the launcher (and login client) with $(CC) (cross: CC=...)
#   make install DESTDIR=/path/rootfs   install-daemon + install-systemd + install-defconfig
#   make install-daemon                 $(BINDIR)/skiff-core        launcher, also the login shell
#                                       $(PKGLIBDIR)/skiff-core.mjs the bundle
#   make install-systemd                $(SYSTEMDUNITDIR)/skiff-core.service
#   make install-defconfig              $(COREENVDIR)/defconfig.yaml default config
#                                       $(COREENVDIR)/base/          default image's build context
#
# Nothing here needs root unless DESTDIR is a root-owned tree; nothing runs systemctl.

PREFIX = /usr
BINDIR = $(PREFIX)/bin
LIBDIR = $(PREFIX)/lib
PKGLIBDIR = $(LIBDIR)/skiff-core
SYSTEMDUNITDIR = $(LIBDIR)/systemd/system
# The daemon looks for its default config here (as SkiffOS's Go skiff-core did): not a free choice.
COREENVDIR = /opt/skiff/coreenv
# Node.js on the device; the launcher execs it by this absolute path.
NODE = /usr/bin/node

# Tools and flags: the environment or the command line may set these (Buildroot passes its
# cross-compiler as CC, CFLAGS, LDFLAGS). The layout variables above change only on the command line.
NPM ?= npm
INSTALL ?= install
CFLAGS ?= -O2
LDFLAGS ?=

BUNDLE = dist/skiff-core.mjs
LAUNCHER = dist/skiff-core-launcher
LAUNCHER_SRC = $(sort $(wildcard launcher/*.c))
LAUNCHER_HDR = $(wildcard launcher/*.h)
# What the launcher was compiled with: another CC, CFLAGS, NODE or PREFIX recompiles it, so a
# launcher left over from a host build is not installed into a cross-compiled image.
LAUNCHER_STAMP = $(LAUNCHER).flags
LAUNCHER_FLAGS = $(CC) $(CFLAGS) $(LDFLAGS) node=$(NODE) bundle=$(PKGLIBDIR)/skiff-core.mjs
UNIT = systemd/skiff-core.service
DEFCONFIG = defaults/skiff-core.yaml
BASE_CONTEXT = defaults/base

.DELETE_ON_ERROR:
.PHONY: all build check-bundle launcher install install-daemon install-systemd install-defconfig FORCE

all: check-bundle launcher

build:
	$(NPM) ci
	$(NPM) run build

# The bundle is built from source by `make build` (or `npm run build`); installing never builds it,
# so an install cannot reach for the network.
check-bundle: $(BUNDLE)

$(BUNDLE):
	@echo "$(BUNDLE) is missing in $(CURDIR): build it first with 'make build' (npm ci + npm run build) in the skiff-core source tree." >&2
	@exit 1

launcher: $(LAUNCHER)

$(LAUNCHER_STAMP): FORCE
	@mkdir -p $(@D)
	@echo '$(LAUNCHER_FLAGS)' | cmp -s - $@ || echo '$(LAUNCHER_FLAGS)' >$@

$(LAUNCHER): $(LAUNCHER_SRC) $(LAUNCHER_HDR) $(LAUNCHER_STAMP)
	$(CC) $(CFLAGS) -Wall -Wextra \
		-DSKIFF_CORE_NODE='"$(NODE)"' \
		-DSKIFF_CORE_BUNDLE='"$(PKGLIBDIR)/skiff-core.mjs"' \
		$(LDFLAGS) -o $@ $(LAUNCHER_SRC)

install: install-daemon install-systemd install-defconfig

# Every install recipe runs under umask 022: what it creates (parent directories included) must be
# readable by everyone, since the launcher and the bundle run as users' login shell.
install-daemon: $(BUNDLE) $(LAUNCHER)
	set -e; umask 022; \
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(PKGLIBDIR); \
	$(INSTALL) -m 0644 $(BUNDLE) $(DESTDIR)$(PKGLIBDIR)/skiff-core.mjs; \
	$(INSTALL) -m 0755 $(LAUNCHER) $(DESTDIR)$(BINDIR)/skiff-core

# The unit names /usr/bin/skiff-core; another BINDIR is written into the installed copy.
install-systemd:
	set -e; umask 022; \
	$(INSTALL) -d $(DESTDIR)$(SYSTEMDUNITDIR); \
	sed 's|/usr/bin/skiff-core|$(BINDIR)/skiff-core|g' $(UNIT) \
		>$(DESTDIR)$(SYSTEMDUNITDIR)/skiff-core.service.tmp; \
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/skiff-core.service.tmp; \
	mv -f $(DESTDIR)$(SYSTEMDUNITDIR)/skiff-core.service.tmp \
		$(DESTDIR)$(SYSTEMDUNITDIR)/skiff-core.service

# The build context is replaced as a whole, so a file removed from defaults/base/ does not linger
# in the image the device builds. Executable files keep their execute bit.
install-defconfig:
	set -e; umask 022; \
	$(INSTALL) -d $(DESTDIR)$(COREENVDIR); \
	$(INSTALL) -m 0644 $(DEFCONFIG) $(DESTDIR)$(COREENVDIR)/defconfig.yaml; \
	rm -rf $(DESTDIR)$(COREENVDIR)/base; \
	$(INSTALL) -d $(DESTDIR)$(COREENVDIR)/base; \
	find $(BASE_CONTEXT) -mindepth 1 -type d | sort | while read -r d; do \
		$(INSTALL) -d "$(DESTDIR)$(COREENVDIR)/base/$${d#$(BASE_CONTEXT)/}" || exit 1; \
	done; \
	find $(BASE_CONTEXT) -type f | sort | while read -r f; do \
		if [ -x "$$f" ]; then m=0755; else m=0644; fi; \
		$(INSTALL) -m $$m "$$f" "$(DESTDIR)$(COREENVDIR)/base/$${f#$(BASE_CONTEXT)/}" || exit 1; \
	done

FORCE:
