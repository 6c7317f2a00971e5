# NVIDIA Triton (GPU) with what the python-backend models import: the project's specs and
# runtime helpers, onnxruntime-gpu, ONNX Runtime GenAI's CUDA build (the llm model),
# tokenizers. The entrypoint loads each model's promoted versions after start-up.
FROM nvcr.io/nvidia/tritonserver:24.10-py3
WORKDIR /opt/voicechat
RUN apt-get update && apt-get install -y --no-install-recommends espeak-ng \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY orchestrator orchestrator
COPY export export
COPY storage storage
COPY bench bench
RUN pip install --no-cache-dir --no-deps . \
    && pip install --no-cache-dir "numpy<2" onnxruntime-gpu onnxruntime-genai-cuda==0.18.0 \
       jinja2 tokenizers tiktoken msgspec
COPY docker/triton-entrypoint.sh /usr/local/bin/triton-entrypoint.sh
EXPOSE 8000 8001 8002
ENTRYPOINT ["/usr/local/bin/triton-entrypoint.sh"]
