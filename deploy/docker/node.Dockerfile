# Model image, runtime node. Built by src/drivers/docker-image.ts, tagged
# isomodel/<model>:<version>; see docs/docker.md. Context: model/ (the package) and isomodel/
# (dist/src/worker: the Node host and the isomodel/worker SDK; package.json: ES modules). The base
# is made on this machine by make-base-image.sh node: nothing is pulled.
ARG BASE=isomodel/base:node
FROM ${BASE}
ARG ENTRY=model.mjs
COPY isomodel/ /opt/isomodel/
COPY model/ /model/
ENV ISOMODEL_PROTOCOL=1 ISOMODEL_MODEL_DIR=/model ISOMODEL_ENTRY=/model/${ENTRY} HOME=/tmp TMPDIR=/tmp
WORKDIR /tmp
USER 65534:65534
# The worker speaks the protocol on its stdin/stdout only: a HEALTHCHECK process could not reach
# it. The gateway's protocol pings are the health check (a worker that misses one is replaced).
HEALTHCHECK NONE
CMD ["/bin/sh", "-c", "exec node /opt/isomodel/dist/src/worker/node-host.js \"$ISOMODEL_ENTRY\""]
