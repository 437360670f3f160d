################################################################################
#
# skiff-core
#
################################################################################

# The package is the repository this br2-external tree lives in (local site
# method): nothing is downloaded, so there is no .hash file. The version
# follows package.json (test/integration/install.test.ts checks it).
SKIFF_CORE_VERSION = 0.1.0
SKIFF_CORE_SITE = $(BR2_EXTERNAL_SKIFF_CORE_PATH)/..
SKIFF_CORE_SITE_METHOD = local
# skiff-core is MIT; the bundle includes its npm dependencies, under the
# other licenses.
SKIFF_CORE_LICENSE = MIT, Apache-2.0, BSD-3-Clause, ISC, Unlicense
SKIFF_CORE_LICENSE_FILES = LICENSE
# Copy only what the build and install steps use: not node_modules, not a
# Buildroot output directory that may sit inside the checkout.
SKIFF_CORE_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--include=/Makefile --include=/LICENSE \
	--include='/launcher/***' --include='/systemd/***' \
	--include=/dist/ --include=/dist/skiff-core.mjs \
	--exclude='*'

# The bundle (dist/skiff-core.mjs) is architecture-independent JavaScript
# with no native addon, built beforehand in the source tree with
# "make build": that needs npm and its registry, and Buildroot builds
# offline. Here the Makefile only checks that the bundle is there and
# cross-compiles the launcher.
define SKIFF_CORE_BUILD_CMDS
	$(TARGET_MAKE_ENV) $(MAKE) -C $(@D) $(TARGET_CONFIGURE_OPTS) \
		check-bundle launcher
endef

# The same compiler settings as the build step, so that the launcher is not
# compiled again (for the host) at install time.
define SKIFF_CORE_INSTALL_TARGET_CMDS
	$(TARGET_MAKE_ENV) $(MAKE) -C $(@D) $(TARGET_CONFIGURE_OPTS) \
		DESTDIR=$(TARGET_DIR) install-daemon
endef

define SKIFF_CORE_INSTALL_INIT_SYSTEMD
	$(TARGET_MAKE_ENV) $(MAKE) -C $(@D) DESTDIR=$(TARGET_DIR) install-systemd
endef

$(eval $(generic-package))
