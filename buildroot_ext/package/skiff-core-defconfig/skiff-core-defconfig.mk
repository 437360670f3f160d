################################################################################
#
# skiff-core-defconfig
#
################################################################################

# The default config and image of skiff-core, from the same repository
# (local site method: nothing is downloaded, so there is no .hash file).
SKIFF_CORE_DEFCONFIG_VERSION = 0.1.0
SKIFF_CORE_DEFCONFIG_SITE = $(BR2_EXTERNAL_SKIFF_CORE_PATH)/..
SKIFF_CORE_DEFCONFIG_SITE_METHOD = local
SKIFF_CORE_DEFCONFIG_LICENSE = MIT
SKIFF_CORE_DEFCONFIG_LICENSE_FILES = LICENSE
SKIFF_CORE_DEFCONFIG_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--include=/Makefile --include=/LICENSE --include='/defaults/***' \
	--exclude='*'

define SKIFF_CORE_DEFCONFIG_INSTALL_TARGET_CMDS
	$(TARGET_MAKE_ENV) $(MAKE) -C $(@D) DESTDIR=$(TARGET_DIR) install-defconfig
endef

$(eval $(generic-package))
