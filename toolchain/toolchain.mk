# SPDX-License-Identifier: MIT
# Target compiler and static libraries for a musl build; included by the
# top-level Makefile with TC_ARCH set to x86_64 or aarch64 (the host is amd64).
#
# Defines CC, AR, STRIP, TC_SYSROOT, TC_CFLAGS, TC_LDFLAGS, TC_LIBS,
# TC_LIBFILES, TC_STAMP (and the rule that builds it) and TC_QEMU.

TC_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
TOOLCHAIN_OUT ?= $(TC_DIR)/out

ifeq ($(TC_ARCH),x86_64)
CC := x86_64-linux-musl-gcc
AR := ar
STRIP := strip
else ifeq ($(TC_ARCH),aarch64)
CC := aarch64-linux-musl-gcc
AR := aarch64-linux-gnu-ar
STRIP := aarch64-linux-gnu-strip
else
$(error TC_ARCH must be x86_64 or aarch64, not '$(TC_ARCH)')
endif

TC_SYSROOT := $(TOOLCHAIN_OUT)/$(TC_ARCH)
TC_CFLAGS := -I$(TC_SYSROOT)/include
TC_LDFLAGS := -static -L$(TC_SYSROOT)/lib -Wl,--gc-sections
# In link order (libarchive uses libzstd, liblzma and libz; libext2fs uses
# libcom_err); pick a subset as the configuration needs.
TC_LIBS := -larchive -lext2fs -lcom_err -lzstd -llzma -llz4 -ldeflate -lz -lsodium
TC_LIBFILES := $(addprefix $(TC_SYSROOT)/lib/,libarchive.a libext2fs.a libcom_err.a \
	libzstd.a liblzma.a liblz4.a libdeflate.a libz.a libsodium.a)

# Command prefix that runs a target binary here: empty when it runs natively.
TC_QEMU := $(if $(filter $(TC_ARCH),$(shell uname -m)),,qemu-$(TC_ARCH)-static)

# Touched by build.sh after every successful run; build.sh itself skips the
# libraries whose sources, flags and compiler have not changed.
TC_STAMP := $(TC_SYSROOT)/.toolchain-stamp

$(TC_STAMP): $(TC_DIR)/build.sh $(TC_DIR)/sources.lock
	TOOLCHAIN_OUT='$(TOOLCHAIN_OUT)' '$(TC_DIR)/build.sh' $(TC_ARCH)

$(TC_LIBFILES): $(TC_STAMP) ;
