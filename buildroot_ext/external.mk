include $(sort $(wildcard $(BR2_EXTERNAL_SKIFF_CORE_PATH)/package/*/*.mk))
