# talkface app image: CPU Prefect worker, Dask scheduler and workers, `talkface deploy`.
# Build from the repository root: docker compose build (see docs/orchestration.md).
FROM python:3.11-slim-bookworm

# libGL/glib for mediapipe's OpenCV build; pocketsphinx-testdata for `talkface demo`.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 pocketsphinx-testdata \
    && rm -rf /var/lib/apt/lists/*

# The CPU wheel of torch keeps the image small; override for another build.
ARG TORCH_SPEC="torch==2.13.0"
RUN pip install --no-cache-dir "${TORCH_SPEC}"

WORKDIR /app
COPY pyproject.toml README.md talkface_cli.py ./
COPY flows flows
COPY pipeline pipeline
COPY selection selection
COPY training training
COPY warehouse warehouse
RUN pip install --no-cache-dir ".[ingest,faces,train,flows]"

ENV PREFECT_SERVER_ANALYTICS_ENABLED=false \
    PYTHONUNBUFFERED=1
CMD ["talkface", "--help"]
