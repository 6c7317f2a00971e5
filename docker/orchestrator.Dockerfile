# The Litestar orchestrator (no models inside: it calls Triton at TRITON_URL).
FROM python:3.11-slim
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends espeak-ng curl \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY orchestrator orchestrator
COPY export export
COPY storage storage
# CPU torch from PyTorch's index: a bare "torch" would pull the CUDA build.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install --no-cache-dir ".[cpu]"
EXPOSE 8000
CMD ["voicechat", "serve"]
