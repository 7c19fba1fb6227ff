# farmlink:latest — the farmlink CLI and services, for docker-compose.yml.
#   docker build -t farmlink:latest .      (or: docker compose build)
#   docker run --rm farmlink:latest --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FARMLINK_HOME=/home/farmlink/.farmlink

# The user the services run as, and their FARMLINK_HOME: each writes its ready and heartbeat files under
# run/ there (and the CLI its keys and secrets, hence 0700). The image's default working directory is
# not theirs to write.
RUN useradd --system --create-home --home-dir /home/farmlink farmlink \
    && install -d -o farmlink -g farmlink -m 0700 /home/farmlink/.farmlink

WORKDIR /app

# Dependencies first (their layer outlives source changes): exactly requirements-runtime.lock, every file
# checked against its sha256, the build backend included.
COPY requirements-runtime.lock ./
RUN pip install --require-hashes -r requirements-runtime.lock

# Only what the package needs (no .venv, no .farmlink state, no tests; .dockerignore keeps them out of the
# build context too). Installed without its dependencies (all in the lock) and without build isolation
# (which would fetch an unpinned setuptools).
COPY pyproject.toml ./
COPY contracts ./contracts
COPY events ./events
COPY matcher ./matcher
COPY services ./services
COPY farmlink ./farmlink
RUN pip install --no-deps --no-build-isolation . && pip check

USER farmlink
ENTRYPOINT ["farmlink"]
CMD ["--help"]
