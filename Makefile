# knockgate — make test installs what the tests need on a fresh Debian machine (idempotently), builds,
# lints and runs every test. make demo runs knockgate standalone against the real knock and fwknop
# clients in network namespaces (root), narrating each step, and removes everything it created.

SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

# Debian packages the build and the tests need: libpcap for the capture addon (native/), the real peers, the firewall tools.
DEB_PACKAGES := libpcap-dev libssl-dev fwknop-client fwknop-server knockd iptables ipset nftables conntrack \
	tcpdump tcpreplay iproute2 procps iputils-ping openssl python3

.PHONY: test demo demo-kube deps deb-deps node-deps build lint unit clean

# Two lanes at once (scripts/test-lanes.mjs): namespace-building files one at a time, the rest alongside.
test: deps build lint
	node scripts/test-lanes.mjs

demo: deps build
	bash scripts/demo.sh

# The same on a two-node Kubernetes cluster of processes (API emulator, real kubectl, knock, fwknop).
demo-kube: deps build
	node_modules/.bin/vite-node scripts/demo-kube.ts

deps: deb-deps node-deps

deb-deps:
	missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done)
	if [ -n "$$missing" ]; then
	  echo "installing Debian packages:" $$missing
	  if [ "$$(id -u)" != 0 ]; then echo "make deps: need root to apt-get install $$missing" >&2; exit 1; fi
	  apt-get update -qq
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null
	fi

# npm ci only when node_modules is missing or older than the lock file.
node-deps: node_modules/.installed
node_modules/.installed: package-lock.json package.json
	npm ci --no-audit --no-fund
	touch $@

build: node-deps
	npx tsc -p tsconfig.json

lint: node-deps
	npx eslint .
	npx prettier --check . >/dev/null || { npx prettier --check .; exit 1; }

clean:
	rm -rf dist node_modules
