# One image, two commands: `python -m ingest` (default) and `python -m processor`.
# It holds only what the two services run: no development tooling, simulator or tail.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# Dependencies first, in their own layer: exactly the locked, hash-checked set
# (requirements/main.txt, `make lock`), rebuilt only when the lock changes.
COPY requirements/main.txt ./requirements/main.txt
RUN pip install --require-hashes --no-deps -r requirements/main.txt && pip check
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY ingest ./ingest
COPY processor ./processor
COPY servicekit ./servicekit
# The console scripts are development tools whose code is not in the image.
RUN pip install --no-deps . \
    && rm -f /opt/venv/bin/meetings-simulate /opt/venv/bin/meetings-tail \
    && python -m compileall -q /opt/venv

FROM python:${PYTHON_VERSION}-slim
COPY --from=build /opt/venv /opt/venv
# Bytecode was compiled in the build stage; nothing is written at run time except temporary
# files under /tmp (ingest's metrics with several workers), so the root file system can be
# mounted read-only with a tmpfs on /tmp.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# A numeric non-root user: no passwd entry needed, and orchestrators can verify runAsNonRoot.
USER 10001:10001
EXPOSE 8080 8081
# Exec form: SIGTERM from the orchestrator reaches the Python process itself, which drains.
CMD ["python", "-m", "ingest"]
