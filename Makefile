# SPDX-License-Identifier: MIT
# edgeimg: a short, non-recursive Makefile driven by Kconfig.
#   make [O=DIR]                    build DIR/edgeimg (default DIR: build)
#   make [O=DIR] BOARD_defconfig    configure for board/BOARD/defconfig
#   make menuconfig | olddefconfig | savedefconfig | allnoconfig | allyesconfig
#   make demo | check | check-aarch64 | bench | clean   V=1 shows commands

VERSION := 0.2.0
srctree := $(CURDIR)
O ?= build
obj := $(abspath $(O))
DEFAULT_BOARD ?= host

ifeq ($(V),1)
Q :=
else
Q := @
endif

# Debian ships kconfiglib for the system python3 only.
PYTHON ?= $(shell for p in python3 /usr/bin/python3; do \
	$$p -c 'import kconfiglib' 2>/dev/null && { echo $$p; break; }; done)
KCONFIG = KCONFIG_CONFIG=$(obj)/.config srctree=$(srctree) $(PYTHON) -m

# make sees the configuration through auto.conf, written together with
# the C header by one genconfig run, so the two always agree (a .config
# older than Kconfig gets the new symbols' defaults in both).
config-goals := $(filter %config,$(MAKECMDGOALS))
ifeq ($(config-goals),)
-include $(obj)/include/config/auto.conf
endif

.DEFAULT_GOAL := all
.PHONY: all demo check check-aarch64 bench clean menuconfig olddefconfig \
	savedefconfig allnoconfig allyesconfig kconfig-tool

# deps: what a fresh Debian machine lacks, installed (as root) by .ci/deps;
# demo, check and bench run it first.  NO_DEPS=1 skips it.
.PHONY: deps
deps:
ifneq ($(NO_DEPS),1)
	$(Q)$(srctree)/.ci/deps
endif

kconfig-tool: | deps
	@test -n "$(PYTHON)" || { echo "Kconfig needs kconfiglib: apt-get install python3-kconfiglib" >&2; exit 1; }
	@mkdir -p $(obj)

%_defconfig: kconfig-tool
	@test -f board/$*/defconfig || { echo "no board '$*' (see board/)" >&2; exit 1; }
	$(Q)$(KCONFIG) defconfig --kconfig Kconfig board/$*/defconfig

menuconfig olddefconfig allnoconfig allyesconfig: kconfig-tool
	$(Q)$(KCONFIG) $@ Kconfig

savedefconfig: kconfig-tool
	$(Q)$(KCONFIG) savedefconfig --kconfig Kconfig --out $(obj)/defconfig
	@echo "wrote $(obj)/defconfig"

# No configuration yet: start from the default board.
$(obj)/.config:
	$(Q)$(MAKE) --no-print-directory O=$(O) $(DEFAULT_BOARD)_defconfig

# --- toolchain -------------------------------------------------------------
ifeq ($(CONFIG_TOOLCHAIN_X86_64_MUSL),y)
TC_ARCH := x86_64
else ifeq ($(CONFIG_TOOLCHAIN_AARCH64_MUSL),y)
TC_ARCH := aarch64
endif

ifneq ($(TC_ARCH),)
include toolchain/toolchain.mk
# Let the static link drop what no code path uses.
TC_CFLAGS += -ffunction-sections -fdata-sections
else
CC := $(CROSS_COMPILE)cc
AR := $(CROSS_COMPILE)ar
STRIP := $(CROSS_COMPILE)strip
endif

# --- sources ---------------------------------------------------------------
# The library (libedgeimg.a): core, codecs, crypto, delta, formats.
core-y := src/core/err.c src/core/io.c src/core/io_slice.c src/core/opts.c \
	src/core/info.c src/core/vdisk.c src/core/registry.c src/core/outfile.c \
	src/core/bmap.c src/core/part.c
core-y += src/codec/codec.c src/codec/pipeline.c
core-y += src/crypto/sha.c src/crypto/chash.c
formats-y := formats/raw.c
formats-$(CONFIG_FORMAT_SIMG) += formats/simg.c
formats-$(if $(CONFIG_FORMAT_SIMG),,y) += formats/refused.c
formats-$(CONFIG_FORMAT_SQUASHFS) += formats/squashfs/squashfs.c
formats-$(CONFIG_FORMAT_SQUASHFS) += formats/squashfs/squashfs-read.c
formats-$(CONFIG_FORMAT_SQUASHFS) += formats/squashfs/squashfs-write.c
formats-$(CONFIG_FORMAT_SQUASHFS) += formats/squashfs/squashfs-parts.c
formats-$(CONFIG_FORMAT_VHDX) += formats/vhdx.c
formats-$(CONFIG_FORMAT_QCOW2) += formats/qcow2/qcow2.c
formats-$(CONFIG_FORMAT_QCOW2) += formats/qcow2/qcow2-check.c
formats-$(CONFIG_OUTPUT_QCOW2) += formats/qcow2/qcow2-write.c
formats-$(CONFIG_FORMAT_VMDK) += formats/vmdk.c
formats-$(CONFIG_FORMAT_OVA) += formats/ova.c
formats-$(CONFIG_FORMAT_CRAW) += formats/craw.c formats/craw-write.c formats/craw-frames.c
formats-$(CONFIG_FORMAT_VHD) += formats/vhd.c
formats-$(CONFIG_FORMAT_VDI) += formats/vdi.c
# The file view (--files): sources and consumers of a tree of entries.
formats-$(CONFIG_FILES) += src/files/ftree.c src/files/ftview.c src/files/dir.c
formats-$(CONFIG_FILES_EXT) += src/files/ext.c
formats-$(CONFIG_FILES_TAR) += src/files/tar-read.c src/files/tar-write.c
ifeq ($(CONFIG_FILES)$(CONFIG_FORMAT_SQUASHFS),yy)
formats-y += formats/squashfs/squashfs-files.c
endif
ifeq ($(CONFIG_FILES)$(CONFIG_OUTPUT_SQUASHFS),yy)
formats-y += formats/squashfs/squashfs-tree.c
endif
# The public API (src/edgeimg.h).
core-y += src/api/api.c src/api/api-convert.c src/api/api-files.c
core-$(CONFIG_CODEC_ZSTD) += src/api/api-delta.c
core-$(if $(CONFIG_CODEC_ZSTD),,y) += src/api/api-nodelta.c
# Delta patches need zstd.
core-$(CONFIG_CODEC_ZSTD) += src/delta/delta-enc.c src/delta/delta-dec.c src/delta/delta-apply.c \
	src/delta/delta-target.c src/delta/delta-pack.c
core-$(CONFIG_DELTA_SIGN) += src/delta/delta-sign.c

# The command line: one file per verb.
cli-y := src/cli/main.c src/cli/cli.c src/cli/cmd_info.c src/cli/cmd_convert.c \
	src/cli/cmd_compare.c src/cli/cmd_check.c src/cli/cmd_delta.c \
	src/cli/cmd_apply.c

libs-y :=
# libarchive links the codec libraries below: first, for static links
libs-$(CONFIG_FILES_TAR) += -larchive $(if $(TC_ARCH),-lzstd -llzma -lz)
libs-$(CONFIG_FILES_EXT) += -lext2fs -lcom_err
libs-$(CONFIG_CODEC_ZSTD) += -lzstd
libs-$(CONFIG_CODEC_XZ) += -llzma
libs-$(CONFIG_CODEC_LZ4) += -llz4
libs-$(CONFIG_DEFLATE_LIBDEFLATE) += -ldeflate
libs-y += -lz
libs-$(CONFIG_DELTA_SIGN) += -lsodium
libs-$(CONFIG_THREADS) += -pthread

OPT := $(if $(CONFIG_OPTIMIZE_SIZE),-Os,-O2)
EI_CFLAGS := -std=gnu11 $(OPT) -g -Wall -Wextra -Wno-unused-parameter \
	-Wformat=2 -Wvla -D_FILE_OFFSET_BITS=64 -D_GNU_SOURCE \
	-I$(srctree)/src -I$(obj)/include $(TC_CFLAGS) $(CFLAGS)
EI_LDFLAGS := $(TC_LDFLAGS) $(LDFLAGS)

lib-objs := $(patsubst %.c,$(obj)/%.o,$(core-y) $(formats-y))
cli-objs := $(patsubst %.c,$(obj)/%.o,$(cli-y))
gen := $(obj)/include/generated/autoconf.h $(obj)/include/generated/features.h

all: $(obj)/edgeimg

$(obj)/include/config/auto.conf: $(obj)/.config Kconfig $(wildcard */Kconfig)
	@mkdir -p $(dir $@) $(obj)/include/generated
	$(Q)$(KCONFIG) genconfig --header-path $(obj)/include/generated/autoconf.h \
	  --config-out $@ Kconfig && touch $@ $(obj)/include/generated/autoconf.h

$(obj)/include/generated/autoconf.h: $(obj)/include/config/auto.conf

$(obj)/include/generated/features.h: $(obj)/include/config/auto.conf Makefile
	@mkdir -p $(dir $@)
	$(Q){ echo '#define EDGEIMG_VERSION "$(VERSION)"'; \
	  printf '#define EDGEIMG_FEATURES "%s"\n' \
	    "$$(sed -n 's/^CONFIG_\(.*\)=y$$/\1/p' $< | tr '\n' ' ' | sed 's/ $$//')"; \
	} > $@

$(obj)/%.o: %.c $(gen) | $(TC_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(EI_CFLAGS) -MMD -MP -c -o $@ $<

$(obj)/libedgeimg.a: $(lib-objs)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(obj)/edgeimg: $(cli-objs) $(obj)/libedgeimg.a
	@$(if $(Q),echo "  LD      $@")
ifneq ($(TC_ARCH),)
	$(Q)$(CC) $(EI_LDFLAGS) -o $@.debug $^ $(libs-y)
	$(Q)$(STRIP) -o $@ $@.debug
	@echo "  SIZE    $@: $$(stat -c %s $@) bytes, stripped, static $(TC_ARCH)-linux-musl"
else
	$(Q)$(CC) $(EI_LDFLAGS) -o $@ $^ $(libs-y)
endif

-include $(lib-objs:.o=.d) $(cli-objs:.o=.d)

include tests/tests.mk

# demo: the main job on a built-in example (a generated sample disk).
demo: $(obj)/edgeimg | deps
	$(Q)tests/demo.sh $(obj)

clean:
	rm -rf $(obj)
