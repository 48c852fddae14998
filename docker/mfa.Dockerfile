# Montreal Forced Aligner image: Kaldi and MFA from conda-forge, plus talkface as a Prefect worker
# (refresh with --aligner mfa) and as Dask workers that run its alignment tasks.
FROM mambaorg/micromamba:1.5.10-bookworm-slim

USER root
# /scratch: the Dask workers' --local-directory (docker-compose.yml); they run as $MAMBA_USER, who cannot
# create a folder at the root, so a worker would fail at start without it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o "$MAMBA_USER" /scratch
USER $MAMBA_USER

RUN micromamba install -y -n base -c conda-forge python=3.11 montreal-forced-aligner \
    && micromamba clean --all --yes
ARG MAMBA_DOCKERFILE_ACTIVATE=1
# The English ARPAbet models MfaConfig uses by default (downloaded at build time).
RUN mfa model download acoustic english_us_arpa \
    && mfa model download dictionary english_us_arpa

WORKDIR /app
COPY --chown=$MAMBA_USER:$MAMBA_USER pyproject.toml README.md talkface_cli.py ./
COPY --chown=$MAMBA_USER:$MAMBA_USER flows flows
COPY --chown=$MAMBA_USER:$MAMBA_USER pipeline pipeline
COPY --chown=$MAMBA_USER:$MAMBA_USER selection selection
COPY --chown=$MAMBA_USER:$MAMBA_USER training training
COPY --chown=$MAMBA_USER:$MAMBA_USER warehouse warehouse
RUN pip install --no-cache-dir "torch==2.13.0" && pip install --no-cache-dir ".[ingest,faces,flows]"

ENV PREFECT_SERVER_ANALYTICS_ENABLED=false \
    PYTHONUNBUFFERED=1
CMD ["mfa", "version"]
