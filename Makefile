# emu35 — see README.md. Every target works on a fresh Debian 12 machine with Go and gcc.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
GO ?= go
DEBS := mesa-vulkan-drivers libvulkan1 libvulkan-dev vulkan-tools glslc glslang-tools spirv-tools \
	pkg-config libc6-dev ca-certificates

.PHONY: all deps build shaders check-shaders vet test demo bench clean

all: build

# Debian packages: the Vulkan loader and headers, lavapipe (the CPU Vulkan
# device CI uses), and the shader compiler and validator.
deps:
	@if ! dpkg -s $(DEBS) >/dev/null 2>&1; then \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEBS); \
	fi

build:
	CGO_ENABLED=1 $(GO) build -o emu35 ./cmd/emu35

# Recompile every shader variant (glslc + spirv-val) into shaders/spv.
shaders:
	cd shaders && $(GO) run ./gen

# Fails when the committed SPIR-V is not what the sources compile to.
check-shaders: shaders
	@git diff --exit-code --stat -- shaders/ || { echo "committed SPIR-V is stale: run 'make shaders' and commit"; exit 1; }

vet:
	$(GO) vet ./...

# The test command of the README and CI.
test: deps check-shaders vet
	$(GO) test -count=1 -p 1 ./...

# The main job: install, build, show the devices and run the quick benchmark.
demo: deps build
	./emu35 devices
	./emu35 bench --quick

bench: build
	./emu35 bench

clean:
	rm -f emu35
