# One image, two commands: `python -m receiver` (default) and `python -m worker`.
# Configure it with GHA_EXPORTER_* environment variables only.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY receiver receiver
COPY worker worker
COPY shared shared
COPY stack stack
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check .

FROM python:3.12-slim
RUN useradd --system --uid 10001 --no-create-home exporter
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GHA_EXPORTER_LOG__FORMAT=json
USER 10001
EXPOSE 8000 9100
HEALTHCHECK --interval=30s --timeout=3s \
    CMD python -c "import os, urllib.request; port = os.environ.get('HEALTH_PORT', '8000'); urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=2)"
ENTRYPOINT ["python", "-m"]
CMD ["receiver"]
