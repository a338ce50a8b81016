# SPDX-License-Identifier: MIT
# Included by the top-level Makefile: unit-test programs and the runner.

unit-srcs := $(wildcard tests/unit/test_*.c)
unit-bins := $(patsubst tests/unit/%.c,$(obj)/tests/%,$(unit-srcs))

$(obj)/tests/%: tests/unit/%.c tests/unit/t.h $(obj)/libedgeimg.a $(gen)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(EI_CFLAGS) $(EI_LDFLAGS) -o $@ $< $(obj)/libedgeimg.a $(libs-y)

# check: unit tests and CLI tests of this configuration; a cross build's
# programs run under $(TC_QEMU).
check: $(obj)/edgeimg $(unit-bins)
	$(Q)EDGEIMG="$(strip $(TC_QEMU) $(obj)/edgeimg)" RUNNER="$(TC_QEMU)" \
	  UNIT_BINS="$(unit-bins)" FEATURES="$(shell sed -n 's/^CONFIG_\(.*\)=y$$/\1/p' $(obj)/.config 2>/dev/null | tr '\n' ' ')" \
	  tests/run.sh

# check-aarch64: the same tests against the static aarch64 binary.
AARCH64_O ?= $(O)/aarch64
check-aarch64:
	$(Q)$(MAKE) --no-print-directory O=$(AARCH64_O) generic-aarch64_defconfig
	$(Q)$(MAKE) --no-print-directory O=$(AARCH64_O) check
