/* SPDX-License-Identifier: MIT */
/* Named limits and defaults, picked in Kconfig's "Limits" and "Performance" menus. */
#ifndef EDGEIMG_LIMITS_H
#define EDGEIMG_LIMITS_H

#include "core/kconfig.h"

/* Bytes of buffers a converter may hold (pipeline queue, caches). */
#if IS_ENABLED(CONFIG_MEMCAP_16M)
#define EI_MEM_CAP (16ULL << 20)
#elif IS_ENABLED(CONFIG_MEMCAP_256M)
#define EI_MEM_CAP (256ULL << 20)
#else
#define EI_MEM_CAP (64ULL << 20)
#endif

/* The largest metadata table (L1, BAT, grain directory) read into memory. */
#if IS_ENABLED(CONFIG_MAX_TABLE_256M)
#define EI_MAX_TABLE (256ULL << 20)
#else
#define EI_MAX_TABLE (32ULL << 20)
#endif

/* The largest virtual disk accepted from an image header: 64 TiB. */
#define EI_MAX_VIRTUAL_SIZE (64ULL << 40)

/* How deep a chain of backing files or parents may go. */
#define EI_MAX_CHAIN 8

/* Unit of streaming I/O in converters and compare. */
#define EI_IO_CHUNK (1u << 20)

/* Defaults picked in Kconfig's "Performance" menu, tuned per board. */
#if IS_ENABLED(CONFIG_DEFAULT_THREADS_2)
#define EI_DEFAULT_THREADS 2
#elif IS_ENABLED(CONFIG_DEFAULT_THREADS_4)
#define EI_DEFAULT_THREADS 4
#elif IS_ENABLED(CONFIG_THREADS)
#define EI_DEFAULT_THREADS 0    /* one per online core */
#else
#define EI_DEFAULT_THREADS 1
#endif

#if IS_ENABLED(CONFIG_DEFAULT_CODEC_ZSTD)
#define EI_DEFAULT_CODEC "zstd"
#else
#define EI_DEFAULT_CODEC "zlib"
#endif

/* A plain number: the squashfs writer's help prints it as it is. */
#if IS_ENABLED(CONFIG_DEFAULT_BLOCK_64K)
#define EI_DEFAULT_BLOCK 65536
#elif IS_ENABLED(CONFIG_DEFAULT_BLOCK_256K)
#define EI_DEFAULT_BLOCK 262144
#else
#define EI_DEFAULT_BLOCK 131072
#endif

#endif
