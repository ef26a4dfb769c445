# One entry point for building, testing, installing and demonstrating the project.
# Every target installs what it needs itself (see hack/deps.sh); nothing is assumed installed by hand. A recipe that
# runs a tool starts with $(NEED) <what>: a quick check (hack/need.sh) that, as root, installs what is missing with
# hack/deps.sh and otherwise stops naming it and `sudo make deps`. Up-to-date targets run no recipe, so no check.

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
# The WasmEdge shim loads libwasmedge.so.0 (0.14, Debian trixie's libwasmedge0) by soname. Where the host's glibc is
# older than the 2.38 that library needs, `make install` puts trixie's libwasmedge0 with its dependency closure
# (hack/fetch-wasmedge.sh) into $(WASMEDGE_LIBDIR) and points the installed shim's ELF interpreter and RUNPATH there:
# nothing in the environment, so runc and the other children the shim starts keep the host's libraries, and
# /proc/self/exe stays the shim, which re-executes itself as each container's instance process.
WASMEDGE_SHIM := containerd-shim-wasmedge-v1
WASMEDGE_LIBDIR ?= $(PREFIX)/lib/containerd-shim-wasmedge
# yes, no, or auto: a sysroot when the host's glibc is older than 2.38.
WASMEDGE_SYSROOT ?= auto
WASMEDGE_NEEDS_SYSROOT := $(if $(filter auto,$(WASMEDGE_SYSROOT)),$(shell v=$$(getconf GNU_LIBC_VERSION 2>/dev/null | cut -d' ' -f2); \
  [ "$$(printf '%s\n' 2.38 "$$v" | sort -V | head -n1)" = 2.38 ] && echo no || echo yes),$(WASMEDGE_SYSROOT))
# Shared mode: the daemon that runs every sandbox in one process, and the client shim containerd starts for it.
SHARED_BINS := containerd-wasmtimed containerd-shim-wasmtimed-v1
# What `make install` puts into $(PREFIX)/bin: the shims and the native library they load.
SHIM_FILES := $(SHIMS) $(SHARED_BINS) libwasmtime.so
DEMO_WASM := $(OUT)/wasm/wasi-demo-app.wasm
# The C program the memory-limit tests run: how many MiB malloc gets under a limit.
MALLOC_PROBE_WASM := $(OUT)/wasm/wasi-malloc-probe.wasm
TEST_IMAGE := $(OUT)/images/wasi-demo-app.tar
DOTNET_FLAGS := -c $(CONFIGURATION) --nologo -v:q -clp:NoSummary
NEED := @DOTNET=$(DOTNET) CTR=$(CTR) bash hack/need.sh

.PHONY: build deps containerd wasm wasmedge dotnet-build shims test test-unit test-full test-smoke test-newcomer test-image load install uninstall demo clean bench
# The install layout the integration tests run: exactly what `make install PREFIX=…` gives a user. It lives in a
# world-searchable folder, as /usr/local/bin is: a container running as a non-root user loads libwasmtime from
# there after the switch, and a clone under a private folder (mktemp -d is 0700) would refuse it.
TEST_PREFIX ?= /tmp/runwasi-dotnet-prefix-$(shell printf %s '$(OUT)' | sha256sum | cut -c1-12)

deps:
	bash hack/deps.sh

# Unpacks Debian's containerd packages into the cache (never installed, never started as a service).
containerd:
	for v in $(sort $(FULL_VERSIONS) $(SMOKE_VERSIONS)); do bash hack/fetch-containerd.sh $$v >/dev/null || exit 1; done

# The WasmEdge sysroot for hosts whose glibc is older than libwasmedge0's (unpacked into the cache, never installed).
wasmedge:
	bash hack/fetch-wasmedge.sh >/dev/null

# The embedded demo: nothing needed but this repository, root and a Debian-based machine.
demo: deps
	bash hack/fetch-containerd.sh $(or $(DEMO_VERSION),1.6) >/dev/null
	$(MAKE) build
	CONTAINERD_VERSION=$(or $(DEMO_VERSION),1.6) SHIM_BIN_DIR=$(OUT)/bin OUT=$(OUT) $(DOTNET) tools/Demo/bin/$(CONFIGURATION)/net10.0/wasm-demo.dll

build: wasm dotnet-build shims

wasm: $(DEMO_WASM) $(MALLOC_PROBE_WASM)

$(DEMO_WASM): tools/wasi-demo-app/main.c
	$(NEED) wasi
	@mkdir -p $(dir $@)
	clang --target=wasm32-wasi -O2 -Wall -Werror -o $@ $<

$(MALLOC_PROBE_WASM): tools/wasi-malloc-probe/main.c
	$(NEED) wasi
	@mkdir -p $(dir $@)
	clang --target=wasm32-wasi -O2 -Wall -Werror -o $@ $<

dotnet-build:
	$(NEED) dotnet
	$(DOTNET) build RunwasiDotnet.slnx $(DOTNET_FLAGS)

# NativeAOT shim binaries, with the native libraries they load, staged as they are installed. The shim P/Invokes
# libwasmtime by bare name, and NativeAOT looks for it beside the executable first.
shims: $(OUT)/bin/containerd-shim-wasmtime-v1 $(addprefix $(OUT)/bin/,$(SHARED_BINS)) $(OUT)/bin/$(WASMEDGE_SHIM)

# The shim's sources, not what builds generate under bin/ and obj/ (that would republish on every build).
SHIM_SOURCES := $(shell find src Directory.Build.props Directory.Packages.props \( -name bin -o -name obj \) -prune -o \( -name '*.cs' -o -name '*.csproj' -o -name '*.props' -o -name '*.proto' -o -name '*.c' -o -name '*.targets' \) -print 2>/dev/null)

$(OUT)/bin/containerd-shim-wasmtime-v1: $(SHIM_SOURCES)
	$(NEED) dotnet clang
	$(DOTNET) publish src/cmd/containerd-shim-wasmtime-v1 $(DOTNET_FLAGS) -r linux-x64 -o $(OUT)/publish/containerd-shim-wasmtime-v1 \
	  -p:SourceRevisionId=$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
	@mkdir -p $(OUT)/bin
	install -m 0755 $(OUT)/publish/containerd-shim-wasmtime-v1/libwasmtime.so $(OUT)/bin/
	install -m 0755 $(OUT)/publish/containerd-shim-wasmtime-v1/containerd-shim-wasmtime-v1 $(OUT)/bin/
	@touch $@

# The WasmEdge shim as published: libwasmedge comes from the system or, at install, from the sysroot.
$(OUT)/bin/$(WASMEDGE_SHIM): $(SHIM_SOURCES)
	$(NEED) dotnet clang
	$(DOTNET) publish src/cmd/$(WASMEDGE_SHIM) $(DOTNET_FLAGS) -r linux-x64 -o $(OUT)/publish/$(WASMEDGE_SHIM) \
	  -p:SourceRevisionId=$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
	@mkdir -p $(OUT)/bin
	install -m 0755 $(OUT)/publish/$(WASMEDGE_SHIM)/$(WASMEDGE_SHIM) $(OUT)/bin/
	@touch $@

# The shared-mode binaries: the daemon loads libwasmtime.so (the same file the shim ships); the client shim does not.
$(addprefix $(OUT)/bin/,$(SHARED_BINS)): $(OUT)/bin/%: $(SHIM_SOURCES)
	$(NEED) dotnet clang
	$(DOTNET) publish src/cmd/$* $(DOTNET_FLAGS) -r linux-x64 -o $(OUT)/publish/$* \
	  -p:SourceRevisionId=$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
	@mkdir -p $(OUT)/bin
	if [ -f $(OUT)/publish/$*/libwasmtime.so ]; then install -m 0755 $(OUT)/publish/$*/libwasmtime.so $(OUT)/bin/; fi
	install -m 0755 $(OUT)/publish/$*/$* $(OUT)/bin/
	@touch $@

# WASI 0.2 test components (tools/components): a wasi:cli/command written in JavaScript (componentize-js embeds a JS
# engine, so it is ~12 MB and compiles for seconds), a component that is neither a command nor an HTTP proxy and a
# command that imports an interface no host has, both written in component text and assembled by jco. The npm toolchain is pinned by tools/components/package-lock.json.
COMPONENTS_DIR := $(OUT)/components
COMPONENTS := $(COMPONENTS_DIR)/hello.wasm $(COMPONENTS_DIR)/neither.wasm $(COMPONENTS_DIR)/unlinkable.wasm $(COMPONENTS_DIR)/http-echo.wasm \
	$(COMPONENTS_DIR)/http-fetch.wasm $(COMPONENTS_DIR)/http-limits.wasm
COMPONENT_TOOLS := tools/components/node_modules/.installed
# The hello component as a plain image (the component at /hello.wasm in the rootfs) and as a wasm-layer image.
COMPONENT_IMAGE := $(OUT)/images/hello-component.tar
COMPONENT_OCI_IMAGE := $(OUT)/images/hello-component-oci.tar
COMPONENT_IMAGES := $(COMPONENT_IMAGE) $(COMPONENT_OCI_IMAGE)
.PHONY: components

components: $(COMPONENTS)

$(COMPONENT_TOOLS): tools/components/package.json tools/components/package-lock.json
	$(NEED) node
	cd tools/components && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(COMPONENTS_DIR)/hello.wasm: tools/components/hello/hello.js tools/components/hello/wit/world.wit tools/components/build.mjs $(COMPONENT_TOOLS)
	$(NEED) node
	@mkdir -p $(dir $@)
	node tools/components/build.mjs tools/components/hello/hello.js tools/components/hello/wit/world.wit $@

$(COMPONENTS_DIR)/neither.wasm: tools/components/neither/neither.wat
$(COMPONENTS_DIR)/unlinkable.wasm: tools/components/unlinkable/unlinkable.wat
$(COMPONENTS_DIR)/neither.wasm $(COMPONENTS_DIR)/unlinkable.wasm: $(COMPONENT_TOOLS)
	$(NEED) node
	@mkdir -p $(dir $@)
	node tools/components/node_modules/@bytecodealliance/jco/dist/jco.js parse $(filter %.wat,$^) -o $@.tmp && mv $@.tmp $@

test-image: $(TEST_IMAGE) $(COMPONENT_IMAGES)

$(TEST_IMAGE): $(DEMO_WASM)
	$(NEED) dotnet
	@mkdir -p $(dir $@)
	$(DOTNET) run --project tools/ImageBuilder -c $(CONFIGURATION) -v:q -- demo --wasm $(DEMO_WASM) --output $@

$(COMPONENT_IMAGE): $(COMPONENTS_DIR)/hello.wasm
	$(NEED) dotnet
	@mkdir -p $(dir $@)
	$(DOTNET) run --project tools/ImageBuilder -c $(CONFIGURATION) -v:q -- component --wasm $< --output $@

$(COMPONENT_OCI_IMAGE): $(COMPONENTS_DIR)/hello.wasm
	$(NEED) dotnet
	@mkdir -p $(dir $@)
	$(DOTNET) run --project tools/ImageBuilder -c $(CONFIGURATION) -v:q -- component-oci --wasm $< --output $@

load: $(TEST_IMAGE)
	$(NEED) ctr
	$(CTR) --address $(CONTAINERD_ADDRESS) image import $(TEST_IMAGE)

# runwasi's fourth demo: the demo module as a wasm layer (wasip1/wasm, layer title wasi-demo-oci.wasm), no rootfs.
# containerd before 1.6.25/1.7.7 refuses to import such images.
OCI_IMAGE := $(OUT)/images/wasi-demo-oci.tar
.PHONY: test-image/oci load/oci

test-image/oci: $(OCI_IMAGE)

$(OCI_IMAGE): $(DEMO_WASM)
	$(NEED) dotnet
	@mkdir -p $(dir $@)
	$(DOTNET) run --project tools/ImageBuilder -c $(CONFIGURATION) -v:q -- demo-oci --wasm $(DEMO_WASM) --output $@

load/oci: $(OCI_IMAGE)
	$(NEED) ctr
	$(CTR) --address $(CONTAINERD_ADDRESS) image import --all-platforms $(OCI_IMAGE)

# The node installer, self-contained, and its image for deploy/installer-daemonset.yaml (see hack/installer-image.sh).
INSTALLER_IMAGE := $(OUT)/images/containerd-wasm-install.tar
INSTALLER_BIN := $(OUT)/publish/containerd-wasm-install/containerd-wasm-install
.PHONY: installer installer-image

installer: $(INSTALLER_BIN)

$(INSTALLER_BIN): $(shell find tools/NodeInstaller \( -name bin -o -name obj \) -prune -o \( -name '*.cs' -o -name '*.csproj' \) -print)
	$(NEED) dotnet
	$(DOTNET) publish tools/NodeInstaller $(DOTNET_FLAGS) -r linux-x64 --self-contained -p:PublishSingleFile=true -o $(dir $@)
	@touch $@

installer-image: $(INSTALLER_IMAGE)

$(INSTALLER_IMAGE): $(INSTALLER_BIN) $(OUT)/bin/containerd-shim-wasmtime-v1 hack/installer-image.sh
	CONFIGURATION=$(CONFIGURATION) bash hack/installer-image.sh $(INSTALLER_BIN) $(OUT)/bin $@

install: shims
	install -d $(DESTDIR)$(PREFIX)/bin
	for f in $(SHIM_FILES); do install -m 0755 $(OUT)/bin/$$f $(DESTDIR)$(PREFIX)/bin/; done
	$(MAKE) --no-print-directory install-wasmedge

# The interpreter and RUNPATH name the final location ($(WASMEDGE_LIBDIR)); the files go under $(DESTDIR). gconv
# (character set modules) is left out: an InvariantGlobalization binary never loads it.
.PHONY: install-wasmedge
install-wasmedge: $(OUT)/bin/$(WASMEDGE_SHIM)
	install -m 0755 $(OUT)/bin/$(WASMEDGE_SHIM) $(DESTDIR)$(PREFIX)/bin/
ifeq ($(WASMEDGE_NEEDS_SYSROOT),yes)
	$(NEED) patchelf
	lib=$$(bash hack/fetch-wasmedge.sh) && rm -rf $(DESTDIR)$(WASMEDGE_LIBDIR) && install -d -m 0755 $(DESTDIR)$(WASMEDGE_LIBDIR) && \
	  cp -a "$$lib/." $(DESTDIR)$(WASMEDGE_LIBDIR)/
	rm -rf $(DESTDIR)$(WASMEDGE_LIBDIR)/gconv
	chmod -R a+rX $(DESTDIR)$(WASMEDGE_LIBDIR)
	patchelf --set-interpreter $(WASMEDGE_LIBDIR)/ld-linux-x86-64.so.2 --set-rpath $(WASMEDGE_LIBDIR) $(DESTDIR)$(PREFIX)/bin/$(WASMEDGE_SHIM)
	[ -n "$(DESTDIR)" ] || $(PREFIX)/bin/$(WASMEDGE_SHIM) -v >/dev/null
else
	@[ -e /usr/lib/x86_64-linux-gnu/libwasmedge.so.0 ] || echo "note: $(WASMEDGE_SHIM) needs libwasmedge.so.0 (apt install libwasmedge0)" >&2
endif

uninstall:
	for f in $(SHIM_FILES) $(WASMEDGE_SHIM); do rm -f $(DESTDIR)$(PREFIX)/bin/$$f; done
	rm -rf $(DESTDIR)$(WASMEDGE_LIBDIR)
	# The lib folder install-wasmedge may have created, when nothing else is in it.
	rmdir $(DESTDIR)$(PREFIX)/lib 2>/dev/null || true

# `make test`: unit tests, the full integration suite on FULL_VERSIONS, the smoke tier on SMOKE_VERSIONS.
test: build components test-image containerd test-unit test-full test-smoke test-newcomer test-samples

TEST_ENV = OUT=$(OUT) SHIM_BIN_DIR=$(TEST_PREFIX)/bin
# -m:1: one test project at a time; in parallel, their private containerds compete for 2 cores and time out.
TEST_FLAGS = $(DOTNET_FLAGS) -m:1 --no-build --logger "console;verbosity=normal"

test-unit:
	$(NEED) dotnet deps
	$(DOTNET) test RunwasiDotnet.slnx $(TEST_FLAGS) --filter "Category!=Integration"

$(TEST_PREFIX)/bin/containerd-shim-wasmtime-v1: $(OUT)/bin/containerd-shim-wasmtime-v1 $(addprefix $(OUT)/bin/,$(SHARED_BINS))
	$(MAKE) install PREFIX=$(TEST_PREFIX)

test-full: $(TEST_PREFIX)/bin/containerd-shim-wasmtime-v1
	$(NEED) dotnet deps
	for v in $(FULL_VERSIONS); do \
	  CONTAINERD_VERSION=$$v $(TEST_ENV) $(DOTNET) test RunwasiDotnet.slnx $(TEST_FLAGS) --filter "Category=Integration" || exit 1; \
	done

test-smoke: $(TEST_PREFIX)/bin/containerd-shim-wasmtime-v1
	$(NEED) dotnet deps
	for v in $(SMOKE_VERSIONS); do \
	  CONTAINERD_VERSION=$$v $(TEST_ENV) $(DOTNET) test RunwasiDotnet.slnx $(TEST_FLAGS) --filter "Category=Integration&Tier=Smoke" || exit 1; \
	done

# What a newcomer does first: make demo, make test-image twice, make install/uninstall, an incremental build.
test-newcomer:
	bash hack/test-newcomer.sh

# `make pack`: the library projects as NuGet packages in $(OUT)/packages, reproducible (ContinuousIntegrationBuild maps
# source paths, NuGet fixes zip timestamps). The version is Directory.Build.props' <Version>, the one place it is set.
PACKAGES := $(OUT)/packages
PACK_PROJECTS := src/Ttrpc src/Containerd.Api src/Containerd.Shimkit src/Containerd.Shim.Wasm src/Containerd.Shim.Wasm.Shared src/Containerd.Shim.Wasmtime src/Containerd.Shim.Wasmtime.Http src/Containerd.Shim.Wasmtime.Shared
VERSION := $(shell sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Directory.Build.props)
# One build (the Wasmtime library references the other five), then each package from it. Zip entries are stamped
# with the commit's time (SOURCE_DATE_EPOCH), so packing the same commit twice gives identical files.
PACK_FLAGS = $(DOTNET_FLAGS) -p:ContinuousIntegrationBuild=true
PACK_EPOCH := $(shell git log -1 --format=%ct 2>/dev/null || echo 315532800)
.PHONY: pack samples test-samples

pack:
	$(NEED) dotnet
	@mkdir -p $(PACKAGES)
	rm -f $(PACKAGES)/*.nupkg $(PACKAGES)/*.snupkg
	$(DOTNET) build src/Containerd.Shim.Wasmtime $(PACK_FLAGS)
	for p in $(PACK_PROJECTS); do SOURCE_DATE_EPOCH=$(PACK_EPOCH) $(DOTNET) pack $$p $(PACK_FLAGS) --no-build -o $(PACKAGES) || exit 1; done

# The samples are built from the packages only (samples/Directory.Build.props: the local feed $(PACKAGES), a package
# cache of their own that is emptied of this repository's packages first, so a stale copy never hides a broken one).
SAMPLES_NUGET := $(OUT)/samples/nuget
SAMPLES_FLAGS = $(DOTNET_FLAGS) -p:RunwasiPackages=$(PACKAGES) -p:RunwasiVersion=$(VERSION) -p:RestorePackagesPath=$(SAMPLES_NUGET)
SAMPLES_BIN := $(OUT)/samples/bin

samples: pack
	$(NEED) clang
	rm -rf $(addprefix $(SAMPLES_NUGET)/,ttrpc containerd.api containerd.shimkit containerd.shim.wasm containerd.shim.wasm.shared containerd.shim.wasmtime)
	$(DOTNET) publish samples/nodewasi $(SAMPLES_FLAGS) -r linux-x64 -o $(OUT)/samples/publish/nodewasi
	$(DOTNET) publish samples/minimal-engine $(SAMPLES_FLAGS) -r linux-x64 -o $(OUT)/samples/publish/minimal-engine
	$(DOTNET) publish samples/nodewasi-shared $(SAMPLES_FLAGS) -r linux-x64 -o $(OUT)/samples/publish/nodewasi-shared
	@mkdir -p $(SAMPLES_BIN)
	install -m 0755 $(OUT)/samples/publish/nodewasi/containerd-shim-nodewasi-v1 $(SAMPLES_BIN)/
	install -m 0755 $(OUT)/samples/publish/nodewasi-shared/containerd-shim-nodewasid-v1 $(SAMPLES_BIN)/
	install -m 0755 $(OUT)/samples/publish/minimal-engine/containerd-shim-minimal-v1 $(OUT)/samples/publish/minimal-engine/libwasmtime.so $(SAMPLES_BIN)/

# The Node.js engine through a private containerd with ctr (tests/Samples.Tests, outside the solution: it runs the
# binaries `make samples` built from the packages, never the projects).
test-samples: samples test-image containerd
	$(NEED) deps
	$(DOTNET) build tests/Samples.Tests $(DOTNET_FLAGS)
	for v in $(FULL_VERSIONS); do \
	  CONTAINERD_VERSION=$$v OUT=$(OUT) SAMPLES_BIN_DIR=$(SAMPLES_BIN) $(DOTNET) test tests/Samples.Tests $(TEST_FLAGS) || exit 1; \
	done

clean:
	rm -rf $(OUT)
	$(DOTNET) clean RunwasiDotnet.slnx $(DOTNET_FLAGS)

# `make bench`: the benchmark scripts (bench/*/run.sh, each on its own private containerd) and their charts in docs/img.
# Not part of `make test`: benchmarks measure, they never pass or fail on a number. Sizes: BENCH_ROUNDS (floors and
# start latency), CHURN_COUNT/CHURN_ROUNDS, DENSITY_COUNT; results (benchmark-action JSON) go to BENCH_RESULTS.
BENCH_ROUNDS ?= 20
CHURN_COUNT ?= 1000
CHURN_ROUNDS ?= 2
DENSITY_COUNT ?= 100
BENCH_RESULTS ?= $(OUT)/bench-results
bench: build
	RESULTS=$(BENCH_RESULTS) OUT=$(OUT) bash bench/floors/run.sh $(BENCH_ROUNDS)
	RESULTS=$(BENCH_RESULTS) OUT=$(OUT) bash bench/start-latency/run.sh $(BENCH_ROUNDS)
	RESULTS=$(BENCH_RESULTS) OUT=$(OUT) bash bench/churn/run.sh $(CHURN_COUNT) $(CHURN_ROUNDS)
	RESULTS=$(BENCH_RESULTS) OUT=$(OUT) bash bench/density/run.sh $(DENSITY_COUNT)
	$(DOTNET) run --project bench/Charts $(DOTNET_FLAGS) -- $(BENCH_RESULTS) docs/img

# The wasi:http echo component (tools/components/http-echo; Shim.Tests builds it on first use too) and its load test
# against a plain Kestrel hello-world (`make bench-http`, numbers for docs/benchmarks.md).
HTTP_ECHO := $(OUT)/components/http-echo.wasm
.PHONY: http-echo bench-http
http-echo: $(HTTP_ECHO)
$(HTTP_ECHO): tools/components/http-echo/echo.js tools/components/http-echo/world.wit tools/components/http-echo/build.mjs $(COMPONENT_TOOLS)
	$(NEED) node
	@mkdir -p $(dir $@)
	node tools/components/http-echo/build.mjs $@
# The outgoing-HTTP test component: the echo's world and build, another handler.
$(COMPONENTS_DIR)/http-fetch.wasm: tools/components/http-fetch/fetch.js tools/components/http-echo/world.wit tools/components/http-echo/build.mjs $(COMPONENT_TOOLS)
	$(NEED) node
	@mkdir -p $(dir $@)
	node tools/components/http-echo/build.mjs $@ tools/components/http-fetch/fetch.js
# The wasi:http limit tests' hostile guest: a request that spins forever, a body that never ends.
$(COMPONENTS_DIR)/http-limits.wasm: tools/components/http-limits/limits.js tools/components/http-echo/world.wit tools/components/http-echo/build.mjs $(COMPONENT_TOOLS)
	$(NEED) node
	@mkdir -p $(dir $@)
	node tools/components/http-echo/build.mjs $@ tools/components/http-limits/limits.js
bench-http: $(HTTP_ECHO)
	$(DOTNET) run --project bench/http -c $(CONFIGURATION) -- $(HTTP_ECHO) 2000 16
