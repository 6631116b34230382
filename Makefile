# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# connbeat — one entry point.
#
#   make            build build/connbeatd and build/connbeat
#   sudo make run   install missing build dependencies, build, start the daemon
#   sudo make check install missing test dependencies, run the whole test suite
#   make bench      benchmarks (bench: NAME VALUE UNIT lines)
#   make install    PREFIX=/usr/local DESTDIR=
#   make fuzz       run every libFuzzer target for FUZZ_SECONDS each
#   make vmlinux    regenerate vmlinux/$(ARCH)/vmlinux.h from this kernel's BTF
#   make SANITIZER=address,undefined|thread ...   sanitizer build in build/san-*/
#   make V=1        show the commands
#   make BUILD=DIR  build into DIR instead of build/ (a second tree beside the first)
#
# Pattern rules after libbpf-bootstrap examples/c/Makefile: clang -target bpf
# -> bpftool gen object -> bpftool gen skeleton; Debian's libbpf-dev and
# bpftool instead of submodules.

.DEFAULT_GOAL := all
.DELETE_ON_ERROR:
.SECONDARY:

ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
CLANG ?= clang
CC := gcc
BPFTOOL ?= bpftool
PREFIX ?= /usr/local
DESTDIR ?=
FUZZ_SECONDS ?= 60
SANITIZER ?=

BUILD ?= build
comma := ,
ifeq ($(FUZZ),1)
# libFuzzer build: clang, everything instrumented, targets linked with the fuzzer main.
CC := $(CLANG)
OUT := $(BUILD)/fuzz
SAN_FLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
else ifeq ($(SANITIZER),)
OUT := $(BUILD)
SAN_FLAGS :=
else
OUT := $(BUILD)/san-$(subst $(comma),-,$(SANITIZER))
SAN_FLAGS := -fsanitize=$(SANITIZER) -fno-sanitize-recover=all -fno-omit-frame-pointer
endif
# The BPF object and skeleton do not depend on the sanitizer: always in $(BUILD)/.
GEN := $(BUILD)

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

WARN := -Wall -Wextra -Werror -Wmissing-field-initializers -Werror=undef -Wno-unused-parameter
CFLAGS ?= -g -O2
LAYERS := common core kernel daemon cli
USER_CFLAGS := $(CFLAGS) -std=gnu11 -D_GNU_SOURCE $(WARN) -pthread $(SAN_FLAGS) \
	-Iinclude -Iuser -I$(GEN) -MMD -MP
LDLIBS := -lbpf -lelf -lz -lmnl -lmicrohttpd -lpthread -lm
USER_LDFLAGS := -pthread $(SAN_FLAGS)
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Wextra -Werror \
	-Wno-unused-parameter -Ivmlinux/$(ARCH) -Iinclude

# ---- sources: one file per concept, one folder per layer (see README "Layout")
BPF_SRCS := $(wildcard bpf/*.bpf.c)
MAINS := user/daemon/connbeatd.c user/cli/cli.c
LIB_SRCS := $(filter-out $(MAINS),$(wildcard $(addsuffix /*.c,$(addprefix user/,$(LAYERS)))))
LIB_OBJS := $(patsubst %.c,$(OUT)/%.o,$(LIB_SRCS))
LIB := $(OUT)/libconnbeat.a
BINS := $(OUT)/connbeatd $(OUT)/connbeat
SKELS := $(patsubst bpf/%.bpf.c,$(GEN)/%.skel.h,$(BPF_SRCS))

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst %.c,$(OUT)/%,$(UNIT_SRCS))
STRESS_SRCS := $(wildcard tests/stress/*.c)
STRESS_BINS := $(patsubst %.c,$(OUT)/%,$(STRESS_SRCS))
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(patsubst %.c,$(OUT)/%,$(TOOL_SRCS))
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst %.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(patsubst %.c,$(OUT)/%,$(BENCH_SRCS))

.PHONY: all deps deps-check deps-bench run check tests unit-bins stress-bins fuzz-bins \
	bench install uninstall fuzz vmlinux clean analyze format help

all: $(BINS) $(SKELS)

help:
	@sed -n '2,15p' Makefile | sed 's/^# \{0,1\}//'

# ---- dependencies -----------------------------------------------------------
deps:
	$(Q)scripts/deps.sh build
deps-check:
	$(Q)scripts/deps.sh check
deps-bench:
	$(Q)scripts/deps.sh bench

# ---- BPF: object -> linked object -> skeleton -------------------------------
$(GEN)/%.tmp.bpf.o: bpf/%.bpf.c $(wildcard include/*.h bpf/*.h) | $(GEN)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(GEN)/%.bpf.o: $(GEN)/%.tmp.bpf.o
	$(call msg,GEN-OBJ,$@)
	$(Q)$(BPFTOOL) gen object $@ $<

$(GEN)/%.skel.h: $(GEN)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $*_bpf > $@

# ---- userspace --------------------------------------------------------------
$(OUT)/%.o: %.c | $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(USER_CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(OUT)/connbeatd: $(OUT)/user/daemon/connbeatd.o $(LIB)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(USER_LDFLAGS) $^ $(LDLIBS) -o $@

$(OUT)/connbeat: $(OUT)/user/cli/cli.o $(LIB)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(USER_LDFLAGS) $^ $(LDLIBS) -o $@

$(OUT)/tests/unit/%: $(OUT)/tests/unit/%.o $(LIB)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(USER_LDFLAGS) $^ $(LDLIBS) -lcmocka -o $@

$(OUT)/tests/stress/%: $(OUT)/tests/stress/%.o $(LIB)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(USER_LDFLAGS) $^ $(LDLIBS) -o $@

$(OUT)/tests/tools/%: $(OUT)/tests/tools/%.o $(LIB)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(USER_LDFLAGS) $^ $(LDLIBS) -o $@

$(OUT)/tests/fuzz/%: $(OUT)/tests/fuzz/%.o $(LIB)
	$(call msg,FUZZER,$@)
	$(Q)$(CC) -fsanitize=fuzzer,address,undefined $^ $(LDLIBS) -o $@

$(OUT)/bench/%: $(OUT)/bench/%.o $(LIB)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(USER_LDFLAGS) $^ $(LDLIBS) -o $@

$(GEN):
	$(Q)mkdir -p $@

unit-bins: $(UNIT_BINS)
fuzz-bins:
	$(Q)$(MAKE) --no-print-directory FUZZ=1 BUILD=$(BUILD) $(FUZZ_BINS)
# (with SANITIZER=thread, also the daemon and CLI: test_daemon_tsan runs them)
stress-bins: $(STRESS_BINS) $(BINS)
tests: $(BINS) $(UNIT_BINS) $(STRESS_BINS) $(TOOL_BINS)

# ---- entry points -----------------------------------------------------------
RUN_ARGS ?=
run: deps
	$(Q)$(MAKE) --no-print-directory all
	exec ./$(BUILD)/connbeatd $(RUN_ARGS)

# The whole suite: normal build, unit tests again under ASan+UBSan, the
# concurrency stress tests and the daemon under TSan, fuzz corpora, BPF and
# daemon tests.
# tests/run prints one PASS/FAIL/SKIP line per case and the summary line.
check: deps deps-check
	$(Q)$(MAKE) --no-print-directory tests
	$(Q)$(MAKE) --no-print-directory SANITIZER=address,undefined unit-bins
	$(Q)$(MAKE) --no-print-directory SANITIZER=thread stress-bins
	$(Q)$(MAKE) --no-print-directory fuzz-bins
	$(Q)CONNBEAT_BUILD=$(abspath $(BUILD)) tests/run

bench: deps deps-bench
	$(Q)$(MAKE) --no-print-directory all $(BENCH_BINS) $(TOOL_BINS)
	$(Q)CONNBEAT_BUILD=$(abspath $(BUILD)) bench/run

# Run every libFuzzer target for FUZZ_SECONDS; new inputs go to build/fuzz/corpus-NAME
# (copy the interesting ones into tests/fuzz/corpus/NAME/ to keep them).
fuzz: deps deps-check fuzz-bins
	$(Q)for f in $(FUZZ_BINS); do n=$$(basename $$f); n=$${n#fuzz_}; \
		mkdir -p $(BUILD)/fuzz/corpus-$$n tests/fuzz/corpus/$$n; \
		echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			$(BUILD)/fuzz/corpus-$$n tests/fuzz/corpus/$$n 2>&1 | \
			grep -E '^(stat::number_of_executed_units|stat::new_units_added|==|SUMMARY)' ; \
		done

vmlinux:
	$(call msg,GEN,vmlinux/$(ARCH)/vmlinux.h)
	$(Q)mkdir -p vmlinux/$(ARCH)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux/$(ARCH)/vmlinux.h.new
	$(Q)mv vmlinux/$(ARCH)/vmlinux.h.new vmlinux/$(ARCH)/vmlinux_$$(uname -r | awk -F. '{print $$1 $$2}').h
	$(Q)ln -sf vmlinux_$$(uname -r | awk -F. '{print $$1 $$2}').h vmlinux/$(ARCH)/vmlinux.h

analyze:
	$(Q)clang --analyze -Xanalyzer -analyzer-output=text $(filter-out -MMD -MP -pthread,$(USER_CFLAGS)) \
		$(LIB_SRCS) $(MAINS)

format:
	$(Q)clang-format -i $(wildcard user/*/*.[ch] bpf/*.[ch] include/*.h tests/*/*.c bench/*.c)

# Binaries in sbin (both need root), man pages, the systemd unit, an example
# configuration and the Grafana dashboard. PREFIX and DESTDIR as usual.
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
DOCDIR ?= $(PREFIX)/share/doc/connbeat
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions
install: all
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)install -D -m 0755 $(BUILD)/connbeatd $(DESTDIR)$(SBINDIR)/connbeatd
	$(Q)install -D -m 0755 $(BUILD)/connbeat $(DESTDIR)$(SBINDIR)/connbeat
	$(Q)install -D -m 0644 man/connbeatd.8 $(DESTDIR)$(MANDIR)/man8/connbeatd.8
	$(Q)install -D -m 0644 man/connbeat.8 $(DESTDIR)$(MANDIR)/man8/connbeat.8
	$(Q)install -d $(DESTDIR)$(UNITDIR)
	$(Q)sed 's|@SBINDIR@|$(SBINDIR)|g' dist/connbeatd.service > $(DESTDIR)$(UNITDIR)/connbeatd.service
	$(Q)chmod 0644 $(DESTDIR)$(UNITDIR)/connbeatd.service
	$(Q)install -D -m 0644 dist/connbeatd.conf $(DESTDIR)$(DOCDIR)/connbeatd.conf.example
	$(Q)install -D -m 0644 dist/grafana-connbeat.json $(DESTDIR)$(DOCDIR)/grafana-connbeat.json
	$(Q)install -D -m 0644 dist/connbeat.bash-completion $(DESTDIR)$(COMPLETIONDIR)/connbeat

uninstall:
	$(Q)rm -f $(DESTDIR)$(SBINDIR)/connbeatd $(DESTDIR)$(SBINDIR)/connbeat \
		$(DESTDIR)$(MANDIR)/man8/connbeatd.8 $(DESTDIR)$(MANDIR)/man8/connbeat.8 \
		$(DESTDIR)$(UNITDIR)/connbeatd.service $(DESTDIR)$(COMPLETIONDIR)/connbeat
	$(Q)rm -rf $(DESTDIR)$(DOCDIR)

clean:
	$(call msg,CLEAN,$(BUILD))
	$(Q)rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
