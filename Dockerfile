# Roster: one image for the API, the workers and the one-shot migration (see docker-compose.yml).
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
# /data is ROSTER_DATA_DIR: the SQLite file and the generated JWT secret of the embedded shape. No VOLUME here:
# the scale-out shape (PostgreSQL, ROSTER_JWT_SECRET) keeps nothing on disk, and a declared VOLUME would give
# every api/worker/migrate container an anonymous volume. Running the embedded shape in a container, mount one:
#   docker run -v roster-data:/data -p 8000:8000 roster:latest
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 ROSTER_DATA_DIR=/data
RUN useradd --create-home --uid 10001 roster && mkdir /data && chown roster /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER roster
WORKDIR /home/roster
EXPOSE 8000
# Ready, not merely alive: /readyz answers 503 while the database cannot be reached.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status == 200 else 1)"
ENTRYPOINT ["roster"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
