# The isomodel gateway, for compose.yaml (docs/docker.md). Context: the repository root, after
# `npm ci && npm run build` (the image takes node_modules and dist/ as they are: nothing is
# installed or pulled at build time). Base: make-base-image.sh full (node + python3).
ARG BASE=isomodel/base:full
FROM ${BASE}
COPY package.json /opt/isomodel/package.json
COPY bin/ /opt/isomodel/bin/
COPY dist/src/ /opt/isomodel/dist/src/
COPY src/console/static/ /opt/isomodel/src/console/static/
COPY sdk/ /opt/isomodel/sdk/
COPY node_modules/ /opt/isomodel/node_modules/
COPY models/ /opt/isomodel/models/
COPY deploy/docker/ /opt/isomodel/deploy/docker/
# Loopback by default: without API keys the gateway refuses anything else (compose runs it in the
# host's network namespace, so 127.0.0.1:8000 is the host's loopback).
ENV ISOMODEL_HOST=127.0.0.1 ISOMODEL_PORT=8000 ISOMODEL_MODELS_DIR=/opt/isomodel/models \
    ISOMODEL_STATE_DIR=/var/lib/isomodel ISOMODEL_WATCH=false
WORKDIR /var/lib/isomodel
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.ISOMODEL_PORT || 8000) + '/health/live').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "/opt/isomodel/bin/isomodel.js", "serve"]
