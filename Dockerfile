# One image, two commands: `receiver` (the default) and `worker`:
#   docker run IMAGE            -> python -m receiver
#   docker run IMAGE worker     -> python -m worker
# Configure it with GHA_EXPORTER_* environment variables only (README, "Configuration").

ARG BASE_IMAGE=python:3.12-slim-bookworm

FROM ${BASE_IMAGE} AS build
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md ./
COPY receiver receiver
COPY worker worker
COPY shared shared
COPY stack stack
RUN python -m venv /opt/gha-exporter \
    && /opt/gha-exporter/bin/pip install --no-compile . \
    && /opt/gha-exporter/bin/pip uninstall --yes pip \
    && /opt/gha-exporter/bin/python -m compileall -q /opt/gha-exporter/lib

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="gha-exporter" \
      org.opencontainers.image.description="Prometheus exporter for GitHub Actions webhooks"
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin exporter
COPY --from=build /opt/gha-exporter /opt/gha-exporter
ENV PATH=/opt/gha-exporter/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GHA_EXPORTER_LOG__FORMAT=json
USER 10001
EXPOSE 8000 9100
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-m", "shared.healthcheck"]
ENTRYPOINT ["python", "-m"]
CMD ["receiver"]
