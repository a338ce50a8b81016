# SPDX-License-Identifier: MIT
# Included by the top-level Makefile: unit-test programs and the runner.

unit-srcs := $(wildcard tests/unit/test_*.c)
unit-bins := $(patsubst tests/unit/%.c,$(obj)/tests/%,$(unit-srcs))

$(obj)/tests/%: tests/unit/%.c tests/unit/t.h $(obj)/libedgeimg.a $(gen)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(EI_CFLAGS) $(EI_LDFLAGS) -o $@ $< $(obj)/libedgeimg.a $(libs-y)

# The library's example program: the public header and libedgeimg.a only.
$(obj)/tests/example-apply: tests/api/example-apply.c src/edgeimg.h $(obj)/libedgeimg.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) -std=gnu11 -O2 -Wall -Wextra -I$(srctree)/src $(TC_CFLAGS) $(CFLAGS) \
	  $(EI_LDFLAGS) -o $@ $< $(obj)/libedgeimg.a $(libs-y)

# check: unit tests and CLI tests of this configuration; a cross build's
# programs run under $(TC_QEMU).
check: $(obj)/edgeimg $(unit-bins) $(obj)/tests/example-apply | deps
	$(Q)EDGEIMG="$(strip $(TC_QEMU) $(obj)/edgeimg)" RUNNER="$(TC_QEMU)" \
	  API_EXAMPLE="$(obj)/tests/example-apply" \
	  UNIT_BINS="$(unit-bins)" FEATURES="$(shell sed -n 's/^CONFIG_\(.*\)=y$$/\1/p' $(obj)/include/config/auto.conf 2>/dev/null | tr '\n' ' ')" \
	  tests/run.sh

# check-aarch64: the same tests against the static aarch64 binary.
AARCH64_O ?= $(O)/aarch64
check-aarch64:
	$(Q)$(MAKE) --no-print-directory O=$(AARCH64_O) generic-aarch64_defconfig
	$(Q)$(MAKE) --no-print-directory O=$(AARCH64_O) check

# --- sanitizers: make check also runs the CLI tests on an ASan/UBSan build
# of the host configuration (a cross build has no sanitizer runtime).
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
san-objs := $(patsubst %.c,$(obj)/san/%.o,$(core-y) $(formats-y) $(cli-y))

$(obj)/san/%.o: %.c $(gen)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC san  $<")
	$(Q)$(CC) $(EI_CFLAGS) $(SAN_FLAGS) -MMD -MP -c -o $@ $<

$(obj)/san/edgeimg: $(san-objs)
	$(Q)$(CC) $(SAN_FLAGS) $(EI_LDFLAGS) -o $@ $^ $(libs-y)

ifeq ($(TC_ARCH),)
check: $(obj)/san/edgeimg
check: export EDGEIMG_SAN = $(obj)/san/edgeimg
endif
-include $(san-objs:.o=.d)

# --- faults (tests/fault/fault.c): an LD_PRELOAD interposer, so for the
# host build only (a static binary cannot be interposed); tests/cli/fault.sh
# finds it in $FAULT_LIB.
ifeq ($(TC_ARCH),)
$(obj)/tests/libfault.so: tests/fault/fault.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) -std=gnu11 -O2 -g -Wall -Wextra -fPIC -shared -o $@ $< -ldl -pthread
check: $(obj)/tests/libfault.so
check: export FAULT_LIB = $(obj)/tests/libfault.so
endif

# --- fuzzing: one libFuzzer binary per reader with a seed script
# (tests/fuzz/seed-FMT.sh), plus "probe".  make fuzz FUZZ_TIME=seconds.
FUZZ_CC ?= clang
FUZZ_TIME ?= 10
FUZZ_FLAGS := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -g -O1
fuzz-formats := $(patsubst tests/fuzz/seed-%.sh,%,$(wildcard tests/fuzz/seed-*.sh))
fuzz-bins := $(patsubst %,$(obj)/fuzz/fuzz-%,$(fuzz-formats))
fuzz-objs := $(patsubst %.c,$(obj)/fuzz/%.o,$(core-y) $(formats-y))

$(obj)/fuzz/%.o: %.c $(gen)
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(EI_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -g -O1 -c -o $@ $<

$(obj)/fuzz/fuzz-%: tests/fuzz/fuzz_format.c $(fuzz-objs)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(FUZZ_CC) $(EI_CFLAGS) $(FUZZ_FLAGS) -DFUZZ_FORMAT='"$*"' -o $@ $^ $(libs-y)

# The patch decoder's fuzzer; its seeds are real patches that
# seed-delta.sh makes with the edgeimg binary.
$(obj)/fuzz/fuzz-delta: tests/fuzz/fuzz_delta.c $(fuzz-objs) | $(obj)/edgeimg
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(FUZZ_CC) $(EI_CFLAGS) $(FUZZ_FLAGS) -o $@ $^ $(libs-y)

# The partition-table parser's fuzzer (src/core/part.c); seeds: seed-part.sh.
$(obj)/fuzz/fuzz-part: tests/fuzz/fuzz_part.c $(fuzz-objs)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(FUZZ_CC) $(EI_CFLAGS) $(FUZZ_FLAGS) -o $@ $^ $(libs-y)

# The squashfs file view's fuzzer (formats/squashfs/squashfs-files.c);
# seeds: seed-sqfsfiles.sh.
$(obj)/fuzz/fuzz-sqfsfiles: tests/fuzz/fuzz_sqfsfiles.c $(fuzz-objs)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(FUZZ_CC) $(EI_CFLAGS) $(FUZZ_FLAGS) -o $@ $^ $(libs-y)

# The file-tree view's parser, through the squashfs writer; seeds: seed-ftview.sh.
$(obj)/fuzz/fuzz-ftview: tests/fuzz/fuzz_ftview.c $(fuzz-objs)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(FUZZ_CC) $(EI_CFLAGS) $(FUZZ_FLAGS) -o $@ $^ $(libs-y)

# The tar source's fuzzer, through the tar consumer; seeds: seed-tar.sh.
$(obj)/fuzz/fuzz-tar: tests/fuzz/fuzz_tar.c $(fuzz-objs)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(FUZZ_CC) $(EI_CFLAGS) $(FUZZ_FLAGS) -o $@ $^ $(libs-y)

# The reuse indexes' fuzzer (qcow2 and squashfs reuse_open, lookups); its
# seeds are containers seed-reuse.sh makes with the edgeimg binary.
$(obj)/fuzz/fuzz-reuse: tests/fuzz/fuzz_reuse.c $(fuzz-objs) | $(obj)/edgeimg
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(FUZZ_CC) $(EI_CFLAGS) $(FUZZ_FLAGS) -o $@ $^ $(libs-y)

# The packed views of delta --exact (both views of a container, the view
# back to it, a view as the writer's input); seeds: seed-pack.sh.
$(obj)/fuzz/fuzz-pack: tests/fuzz/fuzz_pack.c $(fuzz-objs) | $(obj)/edgeimg
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(FUZZ_CC) $(EI_CFLAGS) $(FUZZ_FLAGS) -o $@ $^ $(libs-y)

# The ext2/3/4 file-view source's fuzzer (src/files/ext.c); seeds: seed-ext.sh.
$(obj)/fuzz/fuzz-ext: tests/fuzz/fuzz_ext.c $(fuzz-objs)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(FUZZ_CC) $(EI_CFLAGS) $(FUZZ_FLAGS) -o $@ $^ $(libs-y)

.PHONY: fuzz
# FUZZ_FORMATS="vhdx ova" runs only those fuzzers.
FUZZ_FORMATS ?= $(fuzz-formats)
fuzz: $(patsubst %,$(obj)/fuzz/fuzz-%,$(FUZZ_FORMATS))
	$(Q)FUZZ_TIME=$(FUZZ_TIME) tests/fuzz/run.sh $(obj)/fuzz $(FUZZ_FORMATS)
.SECONDARY: $(fuzz-objs) $(san-objs)

# bench: edgeimg against its peers on the corpus of
# ../shared/bench/make-corpus.sh (built into BENCH_CORPUS when missing;
# needs root, debootstrap and about 5 GiB).
BENCH_CORPUS ?= $(obj)/corpus
.PHONY: bench
bench: $(obj)/edgeimg | deps
	$(Q)test -f $(BENCH_CORPUS)/disk-v2.vdi || $(srctree)/../shared/bench/make-corpus.sh $(BENCH_CORPUS)
	$(Q)tests/bench/bench.sh $(obj)/edgeimg $(BENCH_CORPUS) $(BENCH)
