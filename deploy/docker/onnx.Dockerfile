# Model image, runtime onnx. Built by src/drivers/docker-image.ts, tagged
# isomodel/<model>:<version>; see docs/docker.md. Context: model/ (the package: .onnx + pipeline
# module) and isomodel/ (dist/src/worker: the ONNX host; node_modules: onnxruntime-node with this
# platform's binaries only). The base is make-base-image.sh node (it carries onnxruntime's libraries).
ARG BASE=isomodel/base:node
FROM ${BASE}
ARG ENTRY=model.onnx
ARG PIPELINE=pipeline.mjs
COPY isomodel/ /opt/isomodel/
COPY model/ /model/
ENV ISOMODEL_PROTOCOL=1 ISOMODEL_MODEL_DIR=/model ISOMODEL_ENTRY=/model/${ENTRY} ISOMODEL_PIPELINE=/model/${PIPELINE} \
    HOME=/tmp TMPDIR=/tmp
WORKDIR /tmp
USER 65534:65534
# The worker speaks the protocol on its stdin/stdout only: a HEALTHCHECK process could not reach
# it. The gateway's protocol pings are the health check (a worker that misses one is replaced).
HEALTHCHECK NONE
CMD ["/bin/sh", "-c", "exec node /opt/isomodel/dist/src/worker/onnx-host.js \"$ISOMODEL_ENTRY\" \"$ISOMODEL_PIPELINE\""]
