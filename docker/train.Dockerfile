# mrseq training/sweep image: the package, Ray, DVC, the pipeline. TORCH_SPEC picks the torch
# build: the CPU wheel (default) or a CUDA build for GPU clusters, e.g.
#   --build-arg TORCH_SPEC="torch==2.14.1" (a CUDA build on x86_64; put it in the wheelhouse).
ARG BASE=localhost/mrseq-base:bookworm-2026.11

FROM ${BASE} AS build
ARG TORCH_SPEC="torch==2.13.0"
WORKDIR /build
COPY wheelhouse/ /wheelhouse/
COPY requirements.lock pyproject.toml README.md ./
COPY src/ src/
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheelhouse "${TORCH_SPEC}" \
    && grep -v '^torch==' requirements.lock > /tmp/constraints.txt \
    && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheelhouse \
       -c /tmp/constraints.txt --no-build-isolation .

FROM ${BASE}
COPY --from=build /opt/venv /opt/venv
RUN groupadd --gid 10001 mrseq && useradd --uid 10001 --gid 10001 --create-home mrseq \
    && mkdir -p /workspace && chown mrseq:mrseq /workspace
ENV PATH=/opt/venv/bin:$PATH \
    RAY_USAGE_STATS_ENABLED=0 \
    DVC_NO_ANALYTICS=1 \
    WANDB_MODE=offline
WORKDIR /workspace
USER 10001
# Ray's head and workers are started by KubeRay with `ray start`; no HEALTHCHECK here since
# the operator probes the Ray processes itself.
ENTRYPOINT []
CMD ["mrseq", "--help"]
