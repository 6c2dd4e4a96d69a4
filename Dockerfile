# Equivariant latent explorer: the Streamlit dashboard on the shipped weights and bundled QM9.
FROM python:3.11-slim

# RDKit's drawing code links against libXrender/libXext in its PyPI wheels.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libxrender1 libxext6 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    ELX_CACHE_DIR=/app/.cache

# CPU-only torch first, so requirements.txt does not pull a CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# Featurize QM9 and encode the data sets with all shipped weights at build time: warm start.
RUN python -m backend encode qm9 \
    && python -m backend encode rotmnist \
    && python -m backend encode augcnn \
    && useradd --create-home --uid 1000 explorer \
    && chown -R explorer /app/.cache
USER 1000

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:8501/_stcore/health', timeout=4)"]
CMD ["streamlit", "run", "app.py", "--server.address=0.0.0.0", "--server.port=8501", "--server.headless=true", "--browser.gatherUsageStats=false"]
