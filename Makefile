# upres — GNU Makefile.
#   make            library (build/libupres.a, build/libupres.so) and CLI (build/upres)
#   make check      build and run the whole test suite
#   make asan       the same suite under AddressSanitizer + UBSan (in build-asan/)
#   make bench      speed comparisons (bench/), not part of the tests
#   make demo       generate a sample image and upscale it 4x with an AI model (the README's first command)
#   make fuzz       libFuzzer targets (needs clang)
#
# Variables: BUILD (output directory), OPT, SAN, TESTS (test name filter),
#   SIMD=0          portable nn kernels only: adds -DUPRES_NO_SIMD, so no AVX2
#                   code is built (objects are not rebuilt when SIMD changes:
#                   use its own BUILD directory). Default 1: AVX2+FMA kernels
#                   chosen at run time on x86-64 CPUs that have them
#                   (environment UPRES_SIMD=0 disables them at run time).

CC      ?= cc
BUILD   ?= build
PKGS    := libpng libjpeg libtiff-4 libwebp libwebpdemux libwebpmux zlib
OPT     ?= -O2 -g
STD     := -std=c11 -Wall -Wextra -Werror
# GCC's truncation warning fires on every bounded snprintf of a path; the
# truncation is intended there.
ifeq ($(findstring clang,$(shell $(CC) --version 2>/dev/null)),)
STD     += -Wno-format-truncation
endif
SAN     ?=
SIMD    ?= 1
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))

CPPFLAGS += -Iinclude -Isrc -D_POSIX_C_SOURCE=200809L
CFLAGS   += $(STD) $(OPT) $(SAN) -fPIC -pthread $(PKG_CFLAGS)
ifeq ($(SIMD),0)
CFLAGS   += -DUPRES_NO_SIMD
endif
LDLIBS   += $(PKG_LIBS) -pthread -lm
LDFLAGS  += $(SAN)

LIB_SRC  := $(sort $(wildcard src/*/*.c src/*/*/*.c))
TOOL_SRC := $(sort $(wildcard tools/*.c))
TEST_SRC := $(sort $(wildcard tests/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
TOOL_OBJ := $(TOOL_SRC:%.c=$(BUILD)/obj/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)
DEPS     := $(LIB_OBJ:.o=.d) $(TOOL_OBJ:.o=.d) $(TEST_OBJ:.o=.d)

UPRES_SHARED ?= ../shared

.PHONY: all check asan bench demo fuzz clean
all: $(BUILD)/libupres.a $(BUILD)/libupres.so $(BUILD)/upres

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libupres.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/libupres.so: $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/upres: $(TOOL_OBJ) $(BUILD)/libupres.a
	$(CC) $(LDFLAGS) -o $@ $(TOOL_OBJ) $(BUILD)/libupres.a $(LDLIBS)

$(BUILD)/upres_tests: $(TEST_OBJ) $(BUILD)/libupres.a
	$(CC) $(LDFLAGS) -o $@ $(TEST_OBJ) $(BUILD)/libupres.a $(LDLIBS)

$(BUILD)/make_sample: $(BUILD)/obj/examples/make_sample.o $(BUILD)/libupres.a
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libupres.a $(LDLIBS)

check: $(BUILD)/upres $(BUILD)/upres_tests
	UPRES_BIN=$(BUILD)/upres UPRES_SHARED=$(UPRES_SHARED) $(BUILD)/upres_tests $(TESTS)

# Sanitizers: a separate build tree so the normal build stays untouched.
asan:
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" check

demo: all $(BUILD)/make_sample
	$(BUILD)/make_sample $(BUILD)/sample.png
	$(BUILD)/upres info $(BUILD)/sample.png
	$(BUILD)/upres resize $(BUILD)/sample.png $(BUILD)/sample-lanczos-x4.png --scale 4 --filter lanczos3
	UPRES_MODEL_PATH="$$UPRES_MODEL_PATH:$(UPRES_SHARED)/models" \
	  $(BUILD)/upres upscale $(BUILD)/sample.png -o $(BUILD)/sample-x4.png -s 4 -v
	$(BUILD)/upres info $(BUILD)/sample-x4.png

bench: all
	UPRES_BIN=$(BUILD)/upres UPRES_SHARED=$(UPRES_SHARED) bench/resize.sh
	UPRES_BIN=$(BUILD)/upres UPRES_SHARED=$(UPRES_SHARED) bench/merge_rss.sh
	UPRES_BIN=$(BUILD)/upres UPRES_SHARED=$(UPRES_SHARED) bench/proxy_fidelity.sh
	UPRES_BIN=$(BUILD)/upres UPRES_SHARED=$(UPRES_SHARED) bench/nn.sh

fuzz:
	$(MAKE) BUILD=build-fuzz CC=clang OPT="-O1 -g" \
	  SAN="-fsanitize=fuzzer-no-link,address,undefined" build-fuzz/libupres.a
	clang -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude fuzz/fuzz_decode.c \
	  build-fuzz/libupres.a $(PKG_LIBS) -pthread -lm -o build-fuzz/fuzz_decode
	clang -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude -Isrc fuzz/fuzz_model.c \
	  build-fuzz/libupres.a $(PKG_LIBS) -pthread -lm -o build-fuzz/fuzz_model
	@echo "run: mkdir -p build-fuzz/corpus && build-fuzz/fuzz_decode -max_total_time=60 build-fuzz/corpus tests/fixtures/io"
	@echo "     mkdir -p build-fuzz/models && build-fuzz/fuzz_model -max_total_time=60 build-fuzz/models"

clean:
	rm -rf build build-asan build-fuzz

-include $(DEPS)
