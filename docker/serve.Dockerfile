# mrseq serving image: TorchServe + Java 17 + the mrseq package; the model store is mounted at
# /models at run time (or baked in with --build-arg MAR=models/store/mrseq.mar).
# Build: docker/build.sh serve   (base image and wheelhouse are built locally; no registry)
ARG BASE=localhost/mrseq-base:bookworm-2026.11

FROM ${BASE} AS build
WORKDIR /build
COPY wheelhouse/ /wheelhouse/
COPY requirements.lock pyproject.toml README.md ./
COPY src/ src/
# Offline, pinned install from the wheelhouse: the same path an air-gapped site uses.
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheelhouse torch==2.13.0 \
    && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheelhouse \
       -c requirements.lock --no-build-isolation .

FROM ${BASE}
COPY --from=build /opt/venv /opt/venv
COPY k8s/base/config.properties /etc/mrseq/config.properties
RUN groupadd --gid 10001 mrseq && useradd --uid 10001 --gid 10001 --no-create-home mrseq \
    && mkdir -p /models && chown mrseq:mrseq /models
ENV PATH=/opt/venv/bin:$PATH \
    MRSEQ_TORCH_THREADS=1 \
    WANDB_MODE=disabled
USER 10001
EXPOSE 8080 8082
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s \
    CMD ["mrseq", "ready"]
ENTRYPOINT ["mrseq"]
CMD ["serve", "--foreground", "--model-store", "/models", "--state", "/tmp/serve", \
     "--config", "/etc/mrseq/config.properties", "--host", "0.0.0.0"]
