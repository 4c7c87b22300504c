# SPDX-License-Identifier: MIT
# tiber: one non-recursive Makefile.  `make help` lists the targets.

PREFIX ?= /usr/local
DESTDIR ?=
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= $(PREFIX)/etc
# Pacemaker looks for OCF resource agents here only, whatever PREFIX is
OCFDIR ?= /usr/lib/ocf/resource.d
BUILD ?= build
CC ?= cc
CFLAGS ?= -O2 -g
WERROR ?= 1
SANITIZE ?= 0

PKGS := liburing liblz4 libxxhash xencontrol xenguest xenevtchn \
	xenforeignmemory xenstore xentoollog libnl-route-3.0 libnl-3.0 gnutls \
	libsystemd libmicrohttpd
# pkg-config is only asked when something is compiled (not for deps/help).
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wpointer-arith -Wundef -Wformat=2 -Wvla -Wimplicit-fallthrough \
	-Wno-unused-parameter
ifeq ($(WERROR),1)
WARN += -Werror
endif
override CFLAGS += -std=gnu11 $(WARN) -MMD -MP -D_GNU_SOURCE \
	-D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE -pthread \
	-Iinclude
override LDFLAGS += -pie -pthread

ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer

# ---------------------------------------------------------------- sources
LIB_SRCS := $(sort $(wildcard lib/*.c lib/backend/*.c))
SIM_SRCS := $(filter-out sim/main.c,$(sort $(wildcard sim/*.c)))
TEST_SRCS := $(sort $(wildcard tests/unit/test_*.c))
TEST_UTIL := tests/unit/check_main.c tests/unit/prim.c
# the stream generator, mutator and oracle (tests/fuzz/stream_mutator.h):
# test_stream, tiber-fuzz-stream and the libFuzzer harness (scripts/fuzz.sh)
STREAM_MUTATOR := tests/fuzz/stream_mutator.c tests/fuzz/stream_oracle.c

# Programs: name -> sources.  A program appears once its main file exists.
PROG_tiberd := $(wildcard daemon/*.c)
PROG_tiber-replicator := $(wildcard replicator/*.c)
PROG_tiber-simguest := $(wildcard sim/main.c)
PROG_tiberctl := $(wildcard ctl/*.c)
PROG_tiber-bench := $(wildcard bench/tiber-bench.c bench/bench_*.c)
PROG_tiber-microbench := $(wildcard bench/microbench.c)
PROG_tiber-fuzz-stream := $(if $(wildcard tests/fuzz/mutate_stream.c),\
	tests/fuzz/mutate_stream.c $(STREAM_MUTATOR))
PROGS := $(foreach p,tiberd tiber-replicator tiber-simguest tiberctl \
	tiber-bench tiber-microbench tiber-fuzz-stream,\
	$(if $(PROG_$(p)),$(p)))

# build flavours: $(BUILD)/rel (the programs) and $(BUILD)/asan (tests)
REL := $(BUILD)/rel
ASAN := $(BUILD)/asan
BIN := $(BUILD)/bin

objs = $(patsubst %.c,$(1)/%.o,$(2))

REL_LIB := $(REL)/libtiber.a
REL_SIMLIB := $(REL)/libtibersim.a
ASAN_LIB := $(ASAN)/libtiber.a
ASAN_SIMLIB := $(ASAN)/libtibersim.a

.PHONY: all deps check check-unit check-asan check-integration check-xen check-cluster \
	check-integration-asan check-units check-man man deb \
	xen-guest \
	bench demo soak fuzz install clean help format format-check analyze \
	tidy memcheck mutate
# the nbdkit filter that journals a Xen guest's disk writes (a plugin
# .so for nbdkit: position-independent, lib/simdisk.c compiled in)
NBDKIT_FILTER := $(BIN)/nbdkit-tiber-filter.so

all: $(addprefix $(BIN)/,$(PROGS)) $(NBDKIT_FILTER) \
	$(patsubst tests/unit/%.c,$(REL)/tests/%,$(TEST_SRCS))

$(NBDKIT_FILTER): nbdkit/tiber-filter.c lib/simdisk.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fPIC -shared -o $@ nbdkit/tiber-filter.c lib/simdisk.c

help:
	@echo "tiber make targets:"
	@echo "  all (default)  build libtiber and every program into $(BIN)/"
	@echo "  deps           install the Debian packages (no-op when present)"
	@echo "  check          deps + build + unit tests (plain and ASan/UBSan)"
	@echo "                 + integration tests over the simulated backend"
	@echo "                 (some again against ASan/UBSan builds of the daemons)"
	@echo "  check-xen      real Xen 4.17 in QEMU TCG (tests/xen/, slow)"
	@echo "  check-cluster  ocf:tiber:tiber in a two-node corosync + Pacemaker cluster with a qnetd witness (namespaces)"
	@echo "  xen-guest      PV test guest kernel -> $(BUILD)/xen-guest/"
	@echo "  bench          benchmarks: tables on stdout, JSON and plots"
	@echo "  demo           protect a simulated guest, kill the primary, fail over"
	@echo "  soak           1,000 kill -9 failover runs and a 200-trial split-brain fault campaign"
	@echo "  fuzz           longer decoder mutation run (+ libFuzzer if clang)"
	@echo "  mutate         hand-written mutants of the critical branches: each must fail a unit test"
	@echo "  memcheck       unit tests under valgrind"
	@echo "  analyze        cppcheck over lib/ and the programs"
	@echo "  tidy           clang-tidy (.clang-tidy) over lib/, the programs, nbdkit/"
	@echo "  format         clang-format the tree; format-check fails on a diff"
	@echo "  man            man pages -> $(BUILD)/man/ (options from the key tables)"
	@echo "  install        programs, man pages, systemd units (PREFIX=$(PREFIX) DESTDIR=...)"
	@echo "  deb            Debian package -> $(BUILD)/deb/ (dpkg-buildpackage, lintian)"
	@echo "  clean          remove $(BUILD)/"

deps:
	@scripts/deps.sh

# ---------------------------------------------------------------- compile
$(REL)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(CHECK_CFLAGS) -c -o $@ $<

$(ASAN)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(ASAN_FLAGS) $(PKG_CFLAGS) $(CHECK_CFLAGS) -c -o $@ $<

$(REL_LIB): $(call objs,$(REL),$(LIB_SRCS))
$(ASAN_LIB): $(call objs,$(ASAN),$(LIB_SRCS))
$(REL_SIMLIB): $(call objs,$(REL),$(SIM_SRCS))
$(ASAN_SIMLIB): $(call objs,$(ASAN),$(SIM_SRCS))
%.a:
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

LINK_LIBS = $(PKG_LIBS) -lm -lrt

define prog_rule
$(BIN)/$(1): $(call objs,$(REL),$(PROG_$(1))) $(REL_SIMLIB) $(REL_LIB)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LINK_LIBS)
endef
$(foreach p,$(PROGS),$(eval $(call prog_rule,$(p))))

$(REL)/tests/%: $(REL)/tests/unit/%.o $(call objs,$(REL),$(TEST_UTIL)) \
		$(REL_SIMLIB) $(REL_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(filter %.a,$^) \
		$(CHECK_LIBS) $(LINK_LIBS)

$(ASAN)/tests/%: $(ASAN)/tests/unit/%.o $(call objs,$(ASAN),$(TEST_UTIL)) \
		$(ASAN_SIMLIB) $(ASAN_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $(ASAN_FLAGS) -o $@ $(filter %.o,$^) \
		$(filter %.a,$^) $(CHECK_LIBS) $(LINK_LIBS)

# The daemons built with ASan/UBSan, for check-integration-asan.
ASAN_BIN := $(ASAN)/bin
SAN_PROGS := tiberd tiber-replicator tiber-simguest tiberctl
define asan_prog_rule
$(ASAN_BIN)/$(1): $(call objs,$(ASAN),$(PROG_$(1))) $(ASAN_SIMLIB) $(ASAN_LIB)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) $$(ASAN_FLAGS) -o $$@ $$^ $$(LINK_LIBS)
endef
$(foreach p,$(SAN_PROGS),$(eval $(call asan_prog_rule,$(p))))

# unit tests of a program's own files, or of test code shared with the
# fuzzers (the link puts these objects before the libraries)
$(REL)/tests/test_authz: $(REL)/replicator/authz.o
$(ASAN)/tests/test_authz: $(ASAN)/replicator/authz.o
$(REL)/tests/test_stream: $(call objs,$(REL),$(STREAM_MUTATOR))
$(ASAN)/tests/test_stream: $(call objs,$(ASAN),$(STREAM_MUTATOR))

REL_TESTS := $(patsubst tests/unit/%.c,$(REL)/tests/%,$(TEST_SRCS))
ASAN_TESTS := $(patsubst tests/unit/%.c,$(ASAN)/tests/%,$(TEST_SRCS))

# ---------------------------------------------------------------- tests
# Unit tests print Check's summary line; a failure of any suite fails the
# target after all suites ran.
check: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory check-unit check-asan check-integration \
		check-integration-asan check-units check-man

check-unit: $(REL_TESTS)
	@scripts/run-tests.sh unit $(REL_TESTS)

check-asan: $(ASAN_TESTS)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	TIBER_SANITIZED=1 scripts/run-tests.sh asan $(ASAN_TESTS)

check-integration: all
	@scripts/run-tests.sh integration $(sort $(wildcard tests/integration/test_*.sh))

# The kill -9 failover, backup loss, slow link, TLS, switchover,
# re-protect and metrics tests again, against ASan/UBSan builds of the daemons: any
# sanitizer report (under $(BUILD)/san-logs; daemons get SIGTERM first so
# LeakSanitizer checks them) fails the test.
SAN_IT := $(addprefix tests/integration/,test_failover.sh \
	test_backup_loss.sh test_slow_link.sh test_link_security.sh \
	test_switchover.sh test_reprotect.sh test_metrics.sh)
check-integration-asan: all $(addprefix $(ASAN_BIN)/,$(SAN_PROGS))
	@rm -rf $(BUILD)/san-logs && mkdir -p $(BUILD)/san-logs
	@TIBER_BIN_DIR=$(abspath $(ASAN_BIN)) \
	TIBER_SAN_LOG_DIR=$(abspath $(BUILD))/san-logs \
	ASAN_OPTIONS=detect_leaks=1:log_path=$(abspath $(BUILD))/san-logs/asan \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(abspath $(BUILD))/san-logs/ubsan \
	scripts/run-tests.sh integration-asan $(SAN_IT)

# Man pages: man/*.in, their option lists generated from the programs'
# key tables (scripts/man.py); linted by groff -ww and lexgrog.
man: all
	@scripts/man.py $(BIN) $(BUILD)/man

check-man: man
	@for p in $(BUILD)/man/*; do \
		w=$$(groff -man -ww -z -Tutf8 $$p 2>&1); \
		[ -z "$$w" ] || { echo "check-man: $$p: $$w"; exit 1; }; \
		lexgrog $$p >/dev/null || { echo "check-man: $$p: no NAME line"; exit 1; }; \
	done; echo "check-man: $$(ls $(BUILD)/man | tr '\n' ' ')clean (groff -ww, lexgrog)"

# systemd units (systemd/*.in) with the paths of an installation
units = sed -e 's|@SBINDIR@|$(2)|g' $(1)
check-units: all
	@mkdir -p $(BUILD)/systemd
	@for u in systemd/*.service.in; do \
		$(call units,$$u,$(abspath $(BIN))) \
			> $(BUILD)/systemd/$$(basename $$u .in); done
	@systemd-analyze verify --man=no $(BUILD)/systemd/tiberd@.service \
		$(BUILD)/systemd/tiber-replicator.service && \
		echo "check-units: systemd-analyze verify: tiberd@.service tiber-replicator.service clean"

check-cluster: all
	@TIBER_DEPS_CLUSTER=1 scripts/deps.sh
	@tests/cluster/test_cluster.sh

check-xen: all
	@TIBER_DEPS_XEN=1 scripts/deps.sh
	@tests/xen/run.sh

# The PV test guest kernel: freestanding, its own flags (tests/xen/guest/).
xen-guest:
	@$(MAKE) -C tests/xen/guest OUT=$(abspath $(BUILD))/xen-guest

memcheck: $(REL_TESTS)
	@CK_FORK=no TIBER_VALGRIND=1 scripts/run-tests.sh memcheck $(REL_TESTS)

# Hand-written mutants of the critical branches; each must be killed.
mutate: deps
	@scripts/mutate.py

fuzz: deps all
	@scripts/fuzz.sh

soak: deps all
	@tests/integration/soak.sh

bench: deps all
	@scripts/bench.sh

demo: deps all
	@scripts/demo.sh

analyze:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance \
		--inline-suppr -Iinclude --std=c11 lib daemon replicator sim \
		bench ctl

# clang-tidy with the build's own flags (no dependency files), 2 at a time;
# the packages' headers as system headers, outside HeaderFilterRegex
TIDY_PKG_CFLAGS = $(patsubst -I%,-isystem %,$(PKG_CFLAGS))
TIDY_SRCS = $(sort $(wildcard lib/*.c lib/backend/*.c daemon/*.c \
	replicator/*.c sim/*.c bench/*.c ctl/*.c nbdkit/*.c))
tidy:
	@TIDY_FLAGS='$(filter-out -MMD -MP,$(CFLAGS)) $(TIDY_PKG_CFLAGS)' \
		scripts/tidy.sh $(TIDY_SRCS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h' | grep -v '^tests/xen/guest/')

format-check:
	@scripts/format-check.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin
	for p in $(filter tiberd tiber-replicator,$(PROGS)); do \
		install -m 755 $(BIN)/$$p $(DESTDIR)$(PREFIX)/sbin/; done
	for p in $(filter-out tiberd tiber-replicator tiber-fuzz-stream,$(PROGS)); do \
		install -m 755 $(BIN)/$$p $(DESTDIR)$(PREFIX)/bin/; done
	install -d $(DESTDIR)$(PREFIX)/lib/tiber
	install -m 644 $(NBDKIT_FILTER) $(DESTDIR)$(PREFIX)/lib/tiber/
	install -d $(DESTDIR)$(PREFIX)/share/doc/tiber
	install -m 644 README.md docs/*.md $(DESTDIR)$(PREFIX)/share/doc/tiber/
	scripts/man.py $(BIN) $(BUILD)/man
	for s in 1 5 8; do install -d $(DESTDIR)$(PREFIX)/share/man/man$$s; \
		install -m 644 $(BUILD)/man/*.$$s $(DESTDIR)$(PREFIX)/share/man/man$$s/; done
	install -d $(DESTDIR)$(UNITDIR)
	for u in systemd/*.service.in; do \
		$(call units,$$u,$(PREFIX)/sbin) \
			> $(DESTDIR)$(UNITDIR)/$$(basename $$u .in); \
		chmod 644 $(DESTDIR)$(UNITDIR)/$$(basename $$u .in); done
	install -d $(DESTDIR)$(OCFDIR)/tiber
	install -m 755 ocf/tiber $(DESTDIR)$(OCFDIR)/tiber/tiber
	install -d $(DESTDIR)$(SYSCONFDIR)/tiber
	install -m 644 examples/replicator.cfg examples/tiberd-example.cfg \
		$(DESTDIR)$(SYSCONFDIR)/tiber/

# The Debian package (debian/, dpkg-buildpackage), from the tracked
# files, then lintian at its default level.
deb:
	@v=$$(sed -n 's/^#define TB_VERSION[[:space:]]*"\([^"]*\)".*/\1/p' include/tiber/common.h); \
		head -1 debian/changelog | grep -q "^tiber ($$v-" || \
		{ echo "deb: debian/changelog is not at version $$v (TB_VERSION)"; exit 1; }
	rm -rf $(BUILD)/deb && mkdir -p $(BUILD)/deb/tiber
	git ls-files -z | tar --null -T - -cf - | tar -xf - -C $(BUILD)/deb/tiber
	cd $(BUILD)/deb/tiber && dpkg-buildpackage -us -uc -b > ../build.log 2>&1 || \
		{ tail -30 ../build.log; exit 1; }
	lintian --fail-on error,warning $(BUILD)/deb/*.changes
	@ls $(BUILD)/deb/*.deb

clean:
	rm -rf $(BUILD)

.SECONDARY:

-include $(shell find $(BUILD) -path $(BUILD)/deb -prune -o -name '*.d' -type f -print 2>/dev/null)
