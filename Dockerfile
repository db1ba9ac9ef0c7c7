# edfs: storage servers (and, optionally, the FUSE mount) in a container.
#
#   docker build -t edfs .
#   docker run -d -p 127.0.0.1:7001:7001 -v edfs1:/data -e EDFS_USER=alice -e EDFS_PASSWORD_FILE=/run/secrets/pw ... edfs
#   docker run --rm edfs --help
#
# See docs/docker.md. Kept offline-friendly: no syntax line, no RUN --mount, no digest pins.

# --- base: Node 20 + libfuse 2 (fuse-native loads it at run time; fuse brings fusermount) --------
FROM node:20-bookworm-slim AS base
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libfuse2 fuse \
 && rm -rf /var/lib/apt/lists/*

# --- build: dev dependencies, the patched fuse-native addon, tsc ----------------------------------
FROM base AS build
ENV npm_config_update_notifier=false
# python3, make, g++: `npm ci` runs our postinstall (scripts/setup.sh --fuse-native), which applies
# patches/fuse-native+*.patch with patch-package (a devDependency) and rebuilds the addon.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/ scripts/
COPY patches/ patches/
RUN npm ci --no-audit --no-fund --loglevel=error
COPY tsconfig.json ./
COPY bin/ bin/
COPY src/ src/
COPY servers/ servers/
COPY docker/tsconfig.build.json docker/
RUN npx tsc -p docker/tsconfig.build.json
# Production dependencies only, keeping the patched, rebuilt addon: `npm ci --omit=dev` in the
# runtime stage could neither patch (no patch-package) nor compile (no g++).
RUN npm prune --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error \
 && rm -rf node_modules/fuse-native/build/Release/obj.target node_modules/fuse-native/build/Release/.deps \
 && node -e "const problem = require('./dist/src/fuse/binding').checkPatch(); if (problem) { console.error(problem); process.exit(1) }"

# --- runtime ---------------------------------------------------------------------------------------
FROM base AS runtime
ENV NODE_ENV=production \
    EDFS_DATA=/data
# The server runs as `edfs` (uid/gid 10001); the entrypoint starts as root only to drop to it
# (and stays root for `mount`, which needs CAP_SYS_ADMIN and /dev/fuse).
RUN groupadd --system --gid 10001 edfs \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/edfs --create-home --shell /usr/sbin/nologin edfs \
 && mkdir -p /data /mnt/dfs \
 && chown edfs:edfs /data \
 && chmod 0700 /data
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules/ node_modules/
COPY --from=build /app/bin/ bin/
COPY --from=build /app/dist/src/ dist/src/
COPY --from=build /app/dist/servers/ dist/servers/
COPY docker/entrypoint.sh docker/healthcheck.js /usr/local/lib/edfs-docker/
RUN chmod 0755 /usr/local/lib/edfs-docker/entrypoint.sh \
 && ln -s /app/bin/edfs /usr/local/bin/edfs \
 && edfs --version
VOLUME /data
EXPOSE 7001
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "/usr/local/lib/edfs-docker/healthcheck.js"]
ENTRYPOINT ["/usr/local/lib/edfs-docker/entrypoint.sh"]
CMD ["server"]
