# The Hotline service. Vosk models are mounted, not baked in:
#   docker run -p 8080:8080 -e PUBLIC_URL=https://hotline.example.com \
#     -e TWILIO_ACCOUNT_SID=AC... -e TWILIO_AUTH_TOKEN=... -e REDIS_URL=redis://redis:6379/0 \
#     -v /srv/vosk/vosk-model-small-cn-0.22:/models/zh -e VOSK_MODEL_PATH_ZH=/models/zh hotline
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng sox \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 hotline
WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY ivr ./ivr
COPY speech ./speech
COPY queueing ./queueing
COPY callbacks ./callbacks
COPY emulator ./emulator
COPY hotline ./hotline
RUN pip install --no-cache-dir .

ENV PORT=8080 HOTLINE_CONFIG=/app/config HOTLINE_DATA=/data
RUN mkdir -p /data && chown hotline /data
VOLUME ["/data", "/models"]
USER hotline
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s CMD python -c "import urllib.request,os;urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\",\"8080\")}/healthz',timeout=2)"
CMD ["hotline", "serve"]
