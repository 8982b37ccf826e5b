# Roster: one image for the API, the workers and the one-shot migration (see docker-compose.yml).
# Base images name a patch version (SPEC §13); docs/operations.md says how to move them.
FROM python:3.12.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/roster
WORKDIR /build
# Dependencies first, from the lock file (every package pinned, every file hashed): this layer is rebuilt only
# when requirements/main.txt changes, not for every change to the source.
COPY requirements/main.txt /tmp/requirements.txt
RUN /opt/roster/bin/pip install --require-hashes -r /tmp/requirements.txt
# Then Roster itself, without resolving anything again (the build backend comes from the lock file too).
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/roster/bin/pip install --no-deps --no-build-isolation .

FROM python:3.12.11-slim-bookworm
# /data is ROSTER_DATA_DIR: the SQLite file and the generated JWT secret of the embedded shape. No VOLUME here:
# the scale-out shape (PostgreSQL, ROSTER_JWT_SECRET) keeps nothing on disk, and a declared VOLUME would give
# every api/worker/migrate container an anonymous volume. Running the embedded shape in a container, mount one:
#   docker run -v roster-data:/data -p 8000:8000 roster:latest
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 ROSTER_DATA_DIR=/data PATH=/opt/roster/bin:$PATH
RUN useradd --create-home --uid 10001 roster && mkdir /data && chown roster /data
COPY --from=build /opt/roster /opt/roster
USER roster
WORKDIR /home/roster
EXPOSE 8000
# The API's check: ready, not merely alive (/readyz answers 503 while the database cannot be reached). Worker
# containers replace it with `roster worker --check` (docker-compose.yml), which passes only while this
# container's worker beats within its lease.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status == 200 else 1)"
ENTRYPOINT ["roster"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
