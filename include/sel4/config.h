/*
 * capvisor: the kernel configuration a wasm32 protection domain sees.
 *
 * capvisor's kernel is seL4's 64-bit MCS API with AArch64 numbering (docs/wasm-abi.md), so the
 * configuration options that change libsel4's API are fixed here. No CONFIG_ARCH_* option is
 * defined: code is compiled for wasm32, not for an AArch64 CPU, and must not use inline assembly.
 */
#pragma once

#define CAPVISOR 1
#define CAPVISOR_ABI_VERSION 1

#define CONFIG_KERNEL_MCS 1
#define CONFIG_PRINTING 1
#define CONFIG_DEBUG_BUILD 1
#define CONFIG_WORD_SIZE 64
#define CONFIG_NUM_PRIORITIES 256
#define CONFIG_MAX_NUM_NODES 1
#define CONFIG_RETYPE_FAN_OUT_LIMIT 256
