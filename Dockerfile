# farmlink:latest — the farmlink CLI and services, for docker-compose.yml.
#   docker build -t farmlink:latest .      (or: docker compose build)
#   docker run --rm farmlink:latest --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Only what the package needs (no .venv, no .farmlink state, no tests).
COPY pyproject.toml ./
COPY contracts ./contracts
COPY events ./events
COPY matcher ./matcher
COPY services ./services
COPY farmlink ./farmlink
RUN pip install . && useradd --system --create-home --home-dir /home/farmlink farmlink

USER farmlink
ENTRYPOINT ["farmlink"]
CMD ["--help"]
