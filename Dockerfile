# knockgate image: one binary for every role (sniffer, agent, controller, standalone, sweep).
#   docker buildx build --platform linux/amd64,linux/arm64 -t ghcr.io/OWNER/knockgate:$(node -p "require('./package.json').version") --push .
# The build stage has the toolchain for the capture addon (native/, node-gyp); the runtime stage has
# Node, libpcap and exactly the programs knockgate runs (controller/external-programs.ts — a test
# checks this file installs each one's package).

ARG NODE_VERSION=20

FROM node:${NODE_VERSION}-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ libpcap-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The image's Node has its headers under /usr/local (package.json's install script builds the addon).
ENV npm_config_nodedir=/usr/local
COPY package.json package-lock.json binding.gyp ./
COPY native ./native
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY api ./api
COPY cmd ./cmd
COPY controller ./controller
COPY sniffer ./sniffer
COPY bench ./bench
COPY test/emulators ./test/emulators
COPY test/helpers ./test/helpers
RUN npx tsc -p tsconfig.json \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:${NODE_VERSION}-bookworm-slim
# libpcap0.8 and libssl3 for the addon; the rest is EXTERNAL_PROGRAMS (dash, /bin/sh, is essential).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap0.8 libssl3 nftables ipset iptables conntrack iproute2 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/build/Release/knockgate_pcap.node ./build/Release/
COPY --from=build /src/dist ./dist
COPY crds ./crds
# Non-root by default (the controller and sweep); the chart runs the sniffer and the agent with the
# capabilities they need (NET_RAW; NET_ADMIN and NET_RAW).
USER 65532:65532
ENTRYPOINT ["node", "/app/dist/cmd/knockgate.js"]
CMD ["--help"]
