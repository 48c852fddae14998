# GPU training worker: CUDA torch from the PyTorch image, talkface as a Prefect process worker
# on the GPU work pool. Needs the NVIDIA container runtime on the host.
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md talkface_cli.py ./
COPY flows flows
COPY pipeline pipeline
COPY selection selection
COPY training training
COPY warehouse warehouse
# The image's CUDA torch satisfies the train extra's torch>=2.4: pip keeps it.
RUN pip install --no-cache-dir ".[faces,train,flows]"

ENV PREFECT_SERVER_ANALYTICS_ENABLED=false \
    PYTHONUNBUFFERED=1
CMD ["prefect", "worker", "start", "--pool", "talkface-gpu", "--type", "process"]
