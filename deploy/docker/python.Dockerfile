# Model image, runtime python (and command). Built by src/drivers/docker-image.ts, tagged
# isomodel/<model>:<version>; see docs/docker.md. Context: model/ (the package) and isomodel/
# (sdk/python/isomodel_worker.py: standard library only). The base is made on this machine by
# make-base-image.sh python: nothing is pulled.
ARG BASE=isomodel/base:python
FROM ${BASE}
ARG ENTRY=model.py
COPY isomodel/ /opt/isomodel/
COPY model/ /model/
ENV ISOMODEL_PROTOCOL=1 ISOMODEL_MODEL_DIR=/model ISOMODEL_ENTRY=/model/${ENTRY} \
    HOME=/tmp TMPDIR=/tmp PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /tmp
USER 65534:65534
# The worker speaks the protocol on its stdin/stdout only: a HEALTHCHECK process could not reach
# it. The gateway's protocol pings are the health check (a worker that misses one is replaced).
HEALTHCHECK NONE
# `docker run -i --rm --network none <image>` speaks the protocol on the terminal; the gateway
# passes its own command line (drivers/docker.ts).
CMD ["python3", "-u", "/opt/isomodel/sdk/python/isomodel_worker.py"]
