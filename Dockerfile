# cnllm-harness on a GPU box (default) or a CPU-only image:
#   docker build -t cnllm-harness .                                  # CUDA (PyTorch base image)
#   docker build --build-arg VARIANT=cpu -t cnllm-harness:cpu .      # CPU only
#   docker run --gpus all -v hf-cache:/home/harness/.cache/huggingface -v "$PWD/results:/work/results" \
#     cnllm-harness run --model Qwen/Qwen2.5-0.5B-Instruct --tasks gsm8k --limit 50
ARG VARIANT=cuda
ARG CUDA_BASE=pytorch/pytorch:2.7.1-cuda12.6-cudnn9-runtime
ARG CPU_BASE=python:3.11-slim

FROM ${CUDA_BASE} AS base-cuda
FROM ${CPU_BASE} AS base-cpu
# The CPU variant installs the CPU wheel first, so the project's `torch` requirement pulls no CUDA build.
RUN pip install --no-cache-dir torch==2.7.1 --index-url https://download.pytorch.org/whl/cpu

# hadolint ignore=DL3006
FROM base-${VARIANT}
ENV PYTHONUNBUFFERED=1 \
    HF_HOME=/home/harness/.cache/huggingface \
    HARNESS_CACHE=/home/harness/.cache/cnllm-harness \
    HARNESS_CARDS_DIR=/opt/harness/model_cards
RUN useradd --create-home --uid 1000 harness
WORKDIR /opt/harness
COPY pyproject.toml README.md ./
COPY harness ./harness
COPY model_cards ./model_cards
RUN pip install --no-cache-dir . && mkdir -p /work/results && chown -R harness:harness /work /home/harness
USER 1000
WORKDIR /work
VOLUME ["/home/harness/.cache/huggingface"]
ENTRYPOINT ["harness"]
CMD ["--help"]
