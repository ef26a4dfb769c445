# One entry point for building, testing, installing and demonstrating the project.
# Every target installs what it needs itself (see hack/deps.sh); nothing is assumed installed by hand.

SHELL := /bin/bash
.DEFAULT_GOAL := build

PREFIX ?= /usr/local
OUT ?= $(CURDIR)/out
CONFIGURATION ?= Release
DOTNET ?= dotnet
# containerd versions for the test tiers: the full suite runs on FULL_VERSIONS, the smoke tier on SMOKE_VERSIONS.
FULL_VERSIONS ?= 1.6
SMOKE_VERSIONS ?= 1.7 2
# Where `make load` imports images; `make load CONTAINERD_ADDRESS=…` picks another containerd.
CONTAINERD_ADDRESS ?= /run/containerd/containerd.sock
CTR ?= ctr

SHIMS := containerd-shim-wasmtime-v1
DEMO_WASM := $(OUT)/wasm/wasi-demo-app.wasm
TEST_IMAGE := $(OUT)/images/wasi-demo-app.tar
DOTNET_FLAGS := -c $(CONFIGURATION) --nologo -v:q -clp:NoSummary

.PHONY: build deps wasm dotnet-build shims test test-unit test-full test-smoke test-image load install uninstall demo clean bench

deps:
	bash hack/deps.sh

build: wasm dotnet-build shims

wasm: $(DEMO_WASM)

$(DEMO_WASM): tools/wasi-demo-app/main.c
	@mkdir -p $(dir $@)
	clang --target=wasm32-wasi -O2 -Wall -Werror -o $@ $<

dotnet-build:
	$(DOTNET) build RunwasiDotnet.slnx $(DOTNET_FLAGS)

# NativeAOT shim binaries, with the native libraries they load, staged as they are installed.
shims: $(OUT)/bin/containerd-shim-wasmtime-v1

$(OUT)/bin/containerd-shim-wasmtime-v1: $(shell find src -name '*.cs' -o -name '*.csproj' -o -name '*.proto' -o -name '*.c' 2>/dev/null)
	$(DOTNET) publish src/cmd/containerd-shim-wasmtime-v1 $(DOTNET_FLAGS) -r linux-x64 -o $(OUT)/publish/containerd-shim-wasmtime-v1
	@mkdir -p $(OUT)/bin
	install -m 0755 $(OUT)/publish/containerd-shim-wasmtime-v1/containerd-shim-wasmtime-v1 $(OUT)/bin/
	@touch $@

test-image: $(TEST_IMAGE)

$(TEST_IMAGE): $(DEMO_WASM)
	@mkdir -p $(dir $@)
	$(DOTNET) run --project tools/ImageBuilder $(DOTNET_FLAGS) -- demo --wasm $(DEMO_WASM) --output $@

load: $(TEST_IMAGE)
	$(CTR) --address $(CONTAINERD_ADDRESS) image import --all-platforms $(TEST_IMAGE)

install: shims
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(OUT)/bin/* $(DESTDIR)$(PREFIX)/bin/

uninstall:
	for f in $(notdir $(wildcard $(OUT)/bin/*)) $(SHIMS) libwasmtime.so; do rm -f $(DESTDIR)$(PREFIX)/bin/$$f; done

# `make test`: unit tests, the full integration suite on FULL_VERSIONS, the smoke tier on SMOKE_VERSIONS.
test: build test-unit test-full test-smoke

test-unit:
	$(DOTNET) test tests/Ttrpc.Tests $(DOTNET_FLAGS) --no-build --filter "Category!=Integration"

test-full:
	for v in $(FULL_VERSIONS); do \
	  CONTAINERD_VERSION=$$v OUT=$(OUT) $(DOTNET) test RunwasiDotnet.slnx $(DOTNET_FLAGS) --no-build --filter "Category=Integration" || exit 1; \
	done

test-smoke:
	for v in $(SMOKE_VERSIONS); do \
	  CONTAINERD_VERSION=$$v OUT=$(OUT) $(DOTNET) test RunwasiDotnet.slnx $(DOTNET_FLAGS) --no-build --filter "Category=Integration&Tier=Smoke" || exit 1; \
	done

clean:
	rm -rf $(OUT)
	$(DOTNET) clean RunwasiDotnet.slnx $(DOTNET_FLAGS)
