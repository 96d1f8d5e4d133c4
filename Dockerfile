# Face ID service image: CPU only, runtime dependencies only (no torch, no test tools), non-root.
# Base images come from Debian's packages (deploy/base-images.sh: debootstrap + docker import); pass another
# Debian bookworm image with python3 and python3-venv as BASE if you have one.
#   deploy/base-images.sh && docker build -t faceid .
#   docker run -p 8000:8000 -v faceid-data:/data faceid   # first start: keys in /data/first-start-keys.txt
# A private package index: --build-arg PIP_INDEX_URL=https://pypi.example.internal/simple
ARG BASE=faceid/debian-python:bookworm

FROM ${BASE} AS build
ARG PIP_INDEX_URL=
ARG PIP_TRUSTED_HOST=
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/venv
COPY requirements.lock requirements-nodeps.lock /tmp/req/
# Every package hash-checked (requirements.lock); the weights carriers without their ancient declared pins.
RUN export PIP_INDEX_URL="${PIP_INDEX_URL:-https://pypi.org/simple}" PIP_TRUSTED_HOST \
    && /opt/venv/bin/pip install --require-hashes -r /tmp/req/requirements.lock \
    && /opt/venv/bin/pip install --require-hashes --no-deps --no-build-isolation -r /tmp/req/requirements-nodeps.lock \
    && /opt/venv/bin/pip uninstall -y pip \
    # What a wheel ships that a server never runs: bytecode caches, bundled tests, the Chroma CLI's web UI assets
    # stay (chroma run uses them). Keeps the image lean without touching anything imported.
    && find /opt/venv -depth \( -name __pycache__ -o -name tests -path '*/site-packages/*/tests' \) -type d \
        -exec rm -rf {} + \
    && rm -rf /opt/venv/lib/python3.11/site-packages/facenet_pytorch/models \
        /opt/venv/lib/python3.11/site-packages/facenet_pytorch/data/*.jpg \
        /opt/venv/lib/python3.11/site-packages/face_recognition_models/models/shape_predictor_68_face_landmarks.dat \
        /opt/venv/lib/python3.11/site-packages/face_recognition_models/models/mmod_human_face_detector.dat
WORKDIR /app
COPY service ./service
COPY enroll ./enroll
COPY config ./config
COPY bench/results ./bench/results
# MTCNN and the default model converted once, at build time, without torch: a broken conversion fails the build.
# The entrypoint seeds a data dir's models/ from here, so a container never converts at start.
# prepare writes them owner-only (root's here): readable by all, so uid 10001 can copy them into its data dir.
RUN FACEID_DATA_DIR=/opt/faceid/seed /opt/venv/bin/python -m service.prepare \
    && rm -f /opt/faceid/seed/*.jsonl /opt/faceid/seed/*.txt && chmod -R a+rX /opt/faceid/seed/models

FROM ${BASE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="faceid" \
      org.opencontainers.image.description="Self-hosted face recognition identity service (CPU, offline models)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="faceid/debian-python:bookworm"
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    FACEID_DATA_DIR=/data FACEID_BIND=0.0.0.0:8000 PROMETHEUS_MULTIPROC_DIR=/tmp/faceid-metrics
# /var/lib/faceid-chroma: where compose's Chroma server (`chroma run`, same image) keeps its files.
RUN useradd --uid 10001 --user-group --create-home --home-dir /home/faceid --shell /usr/sbin/nologin faceid \
    && mkdir -p /data /var/lib/faceid-chroma && chown faceid:faceid /data /var/lib/faceid-chroma \
    && chmod 700 /data /var/lib/faceid-chroma
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
COPY --from=build /opt/faceid/seed/models /opt/faceid/models
COPY deploy/entrypoint.sh /usr/local/bin/faceid-entrypoint
WORKDIR /app
USER faceid
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"]
ENTRYPOINT ["faceid-entrypoint"]
CMD ["gunicorn", "-c", "config/gunicorn.conf.py", "service:create_app()"]
