# One image, two commands: `python -m ingest` (default) and `python -m processor`.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY ingest ./ingest
COPY processor ./processor
COPY servicekit ./servicekit
RUN pip install --no-cache-dir .

FROM python:${PYTHON_VERSION}-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin meetings
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER meetings
EXPOSE 8080 8081
# Exec form: SIGTERM from the orchestrator reaches the Python process itself, which drains.
CMD ["python", "-m", "ingest"]
