# emu35 — see README.md. Every target works on a fresh Debian 12 machine with Go and gcc.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
GO ?= go
DEBS := mesa-vulkan-drivers libvulkan1 libvulkan-dev vulkan-tools glslc glslang-tools spirv-tools \
	protobuf-compiler pkg-config libc6-dev ca-certificates \
	libx11-dev libxcursor-dev libxrandr-dev libxinerama-dev libxi-dev libxxf86vm-dev libgl1-mesa-dev \
	xvfb xauth imagemagick x11-utils
PROTOC_GEN_GO := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
GOBIN := $(shell $(GO) env GOPATH)/bin

.PHONY: all deps build shaders check-shaders proto check-proto vet test demo bench clean

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

# Regenerate the Story protobuf code (protoc from Debian, protoc-gen-go pinned).
proto:
	$(GO) install $(PROTOC_GEN_GO)
	cd model/gen/storypb && PATH="$(GOBIN):$$PATH" protoc --go_out=. --go_opt=paths=source_relative interleave_story.proto

check-proto: proto
	@git diff --exit-code --stat -- model/gen/storypb/ || { echo "generated protobuf code is stale: run 'make proto' and commit"; exit 1; }

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "these files need gofmt -w"; exit 1; }

# The test command of the README and CI.
test: deps check-shaders check-proto vet
	$(GO) test -count=1 -p 1 ./...

# The main job: install, build, show the devices, run the quick benchmark and
# generate an image with the demo models (random weights: the output is noise).
demo: deps build
	./emu35 devices
	./emu35 bench --quick
	./emu35 gen --demo --task t2i --ratio 8x8 --image-first --stop-at-eoi --out out/demo

bench: build
	./emu35 bench

clean:
	rm -f emu35
