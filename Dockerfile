# syntax=docker/dockerfile:1
# AgentFleet image: one image for every process; the command picks the role.
#   docker build -t agentfleet .
#   docker run --rm -e REDIS_URL=redis://host.docker.internal:6379 agentfleet            # manager
#   docker run --rm -e REDIS_URL=... agentfleet agents --roles coder --concurrency 4     # an agent pool

# ---- build: install all dependencies, compile the workspaces, then drop dev dependencies ----
FROM node:24-bookworm-slim AS build
WORKDIR /app

# Manifests first, so the dependency layer is reused while only sources change. Every workspace's
# manifest is needed here: without it `npm ci` installs none of that workspace's dependencies.
COPY package.json package-lock.json .npmrc ./
COPY packages/core/package.json packages/core/
COPY packages/host/package.json packages/host/
COPY apps/agents/package.json apps/agents/
COPY apps/manager/package.json apps/manager/
COPY apps/cli/package.json apps/cli/
COPY apps/console/package.json apps/console/
# --ignore-scripts: the root `prepare` script (tsc -b) needs the sources, which come next.
RUN npm ci --ignore-scripts --no-audit --no-fund

COPY tsconfig.json tsconfig.base.json ./
COPY packages packages
COPY apps apps
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && find . -name '*.tsbuildinfo' -not -path './node_modules/*' -delete

# ---- runtime: built workspaces and production dependencies only ----
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Code stays owned by root (read-only for the app); only the artifacts directory is writable.
COPY --from=build /app /app
RUN mkdir -p /app/runs && chown node:node /app/runs
# The unprivileged `node` user (uid 1000) ships with the base image.
USER node
# HTTP API of the manager: `fleet manager` serves it on FLEET_HTTP_PORT (refused keys without FLEET_ADMIN_KEY).
ENV FLEET_HTTP_PORT=8080
# Inside a container the API listens on every interface, so the runtime can publish the port.
ENV FLEET_HTTP_HOST=0.0.0.0
# Logs for a log pipeline: JSON lines with trace ids (a terminal gets short human lines instead).
ENV FLEET_LOG_FORMAT=json
EXPOSE 8080
# Healthy while the process answers: the manager's /healthz (which also checks Redis), or, for an
# agent pool, its /metrics endpoint when FLEET_METRICS_PORT is set.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["node", "-e", "const urls = [`http://127.0.0.1:${process.env.FLEET_HTTP_PORT || 8080}/healthz`]; if (process.env.FLEET_METRICS_PORT) urls.push(`http://127.0.0.1:${process.env.FLEET_METRICS_PORT}/metrics`); Promise.any(urls.map((u) => fetch(u).then((r) => { if (!r.ok) throw new Error(String(r.status)); }))).then(() => process.exit(0), () => process.exit(1));"]
ENTRYPOINT ["node", "apps/cli/bin/fleet.js"]
CMD ["manager"]
