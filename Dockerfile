# Node 24 LTS, pinned to a minor version (the one .ci/run tests with: scripts/with-node24.sh).
# Build stage: compile TypeScript with the full toolchain (better-sqlite3 builds natively here).
FROM node:24.22-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

# Runtime stage: production dependencies and compiled output only, as a non-root user.
FROM node:24.22-bookworm-slim AS runtime
ENV NODE_ENV=production NODE_CONFIG_DIR=/app/config
# Reachable from outside the container (/fhir stays behind api.auth); the audit trail goes to the data
# volume, the one folder the non-root user may write (config/custom-environment-variables.json maps both).
ENV API_HOST=0.0.0.0 API_AUDIT_DESTINATION=/app/data/audit.log
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config ./config
# TW Core + R4 definitions for the profile guard (on by default), found beside package.json.
COPY profiles ./profiles
RUN mkdir -p /app/data && chown node:node /app/data
USER node
VOLUME ["/app/data"]
EXPOSE 8080
# Liveness through the bridge's own endpoint; node is in the image, curl is not.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.API_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node as PID 1 gets SIGTERM directly; the serve command shuts down gracefully on it.
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["serve"]
