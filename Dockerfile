# Equivariant latent explorer: the Streamlit dashboard on the shipped weights and bundled QM9.
#
# Build arguments (see README "Deployment"):
#   BASE_IMAGE    any Debian-based image with Python 3.11 (python3 -m venv must work). Default:
#                 the official image pinned by version. To pin by digest as well, append
#                 @sha256:<digest> (get it on a connected machine with
#                 `docker buildx imagetools inspect python:3.11.11-slim-bookworm`):
#                 python:3.11.11-slim-bookworm@sha256:<DIGEST-PLACEHOLDER: not looked up, see README>
#   TORCH_SOURCE  where torch==2.13.0 (CPU build) comes from:
#                   https://download.pytorch.org/whl/cpu   the PyTorch CPU index (default)
#                   pypi                                  plain PyPI (on Linux that is the CUDA build, ~2.7 GB)
#                   wheelhouse                            air-gapped: every wheel from ./wheels/ in the
#                                                         build context (pip download, see README), no index
# Layer order: requirements -> backend + models + weights -> encode -> app files, so editing a page,
# a results table or the README does not re-run the encode step.
ARG BASE_IMAGE=python:3.11.11-slim-bookworm

# ---- base: runtime system libraries -------------------------------------------------------------
FROM ${BASE_IMAGE} AS base
# RDKit's drawing code links against libXrender/libXext in its PyPI wheels. A base that has them
# already (e.g. debootstrap --include=libxrender1,libxext6) needs no Debian mirror at all.
# hadolint ignore=DL3008
RUN if ! dpkg -s libxrender1 libxext6 > /dev/null 2>&1; then \
        apt-get update \
        && apt-get install -y --no-install-recommends libxrender1 libxext6 \
        && rm -rf /var/lib/apt/lists/*; \
    fi
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH

# ---- deps: a virtual environment with the pinned requirements (wheels stay in this stage) --------
FROM base AS deps
ARG TORCH_SOURCE=https://download.pytorch.org/whl/cpu
# wheel[s] matches the optional ./wheels/ folder (the air-gapped wheelhouse); nothing when absent.
COPY requirements.txt wheel[s] /wheels/
# torch==2.13.0 goes in first from TORCH_SOURCE, so requirements.txt does not pull a CUDA build.
RUN python3 -m venv /opt/venv \
    && case "$TORCH_SOURCE" in \
         wheelhouse|/*) pip install --no-index --find-links /wheels torch==2.13.0 \
                        && pip install --no-index --find-links /wheels -r /wheels/requirements.txt ;; \
         pypi)          pip install -r /wheels/requirements.txt ;; \
         http://*|https://*|file://*) pip install torch==2.13.0 --index-url "$TORCH_SOURCE" \
                        && pip install -r /wheels/requirements.txt ;; \
         *) echo "TORCH_SOURCE must be an index URL, 'pypi' or 'wheelhouse' (got '$TORCH_SOURCE')" >&2; exit 2 ;; \
       esac \
    && python -c "import torch; print('torch', torch.__version__)"

# ---- runtime ------------------------------------------------------------------------------------
FROM base
COPY --from=deps /opt/venv /opt/venv
WORKDIR /app
ENV ELX_CACHE_DIR=/app/.cache

# Everything the encode step reads: the backend, the model code and the shipped weights.
COPY backend/ backend/
COPY models/__init__.py models/aug_cnn.py models/e2cnn_compat.py models/graph_vae.py models/rot_mnist.py models/
COPY models/weights/ models/weights/
# Featurize QM9 and encode the data sets with all shipped weights at build time: warm start.
RUN python -m backend encode qm9 \
    && python -m backend encode rotmnist \
    && python -m backend encode augcnn \
    && useradd --create-home --uid 1000 explorer \
    && chown -R explorer /app/.cache

# App files last: editing these rebuilds only the layers below.
COPY .streamlit/ .streamlit/
COPY models/results/ models/results/
COPY app_pages/ app_pages/
COPY app.py ./
USER 1000

EXPOSE 8501
# Up = Streamlit answers /_stcore/health AND every model's weights + sidecar are intact
# (python -m backend check: ~5 s, loads torch, exit 1 on a missing or corrupt file).
HEALTHCHECK --interval=60s --timeout=30s --start-period=120s --retries=3 \
    CMD ["sh", "-c", "python -c \"import urllib.request; urllib.request.urlopen('http://localhost:8501/_stcore/health', timeout=4)\" && python -m backend check > /dev/null"]
CMD ["streamlit", "run", "app.py", "--server.address=0.0.0.0", "--server.port=8501", "--server.headless=true", "--browser.gatherUsageStats=false"]
