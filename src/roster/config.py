"""Settings from the environment (prefix ROSTER_) and an optional .env file."""

from __future__ import annotations

import os
import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

SUPPORTED_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")
# Plain PostgreSQL URLs (as hosting platforms hand them out) mean the one driver we ship.
POSTGRES_ALIASES = ("postgres", "postgresql")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
# RFC 7518 §3.2: an HMAC key must be at least as long as the hash output: 256/384/512 bits for HS256/384/512.
MIN_SECRET_LENGTH = 32
HMAC_SECRET_LENGTHS = {"HS256": 32, "HS384": 48, "HS512": 64}
ASYMMETRIC_ALGORITHMS = {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"}
HMAC_ALGORITHMS = {"HS256", "HS384", "HS512"}


class ConfigError(Exception):
    """A setting that cannot work; its message is the one line shown at start-up."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROSTER_", env_file=".env", extra="ignore")

    data_dir: Path = Path("roster-data")
    database_url: str = ""
    jwt_secret: str = ""
    jwt_algorithms: Annotated[list[str], NoDecode] = ["HS256"]
    jwt_public_key_file: Path | None = None
    jwks_url: str = ""
    jwt_issuer: str = ""
    jwt_audience: str = ""
    jwt_username_claim: str = "preferred_username"
    token_ttl_minutes: int = Field(60, ge=1, le=7 * 24 * 60)
    max_upload_bytes: int = Field(100 * 1024 * 1024, ge=1)
    embedded_workers: int | None = Field(None, ge=0, le=64)
    batch_size: int = Field(1000, ge=1, le=100_000)
    # Decide the next batch while the previous one is written (roster.bulk.importer); off = one at a time.
    bulk_overlap: bool = True
    public_base_url: str = "http://localhost:8000"
    job_lease_seconds: int = Field(30, ge=2)
    job_max_attempts: int = Field(3, ge=1)
    worker_poll_seconds: float = Field(0.5, gt=0)
    log_level: str = "INFO"
    # Sign-in throttling (SPEC §14): failures counted within the window, per username and per client address.
    signin_max_failures_per_user: int = Field(5, ge=1)
    signin_max_failures_per_address: int = Field(20, ge=1)
    signin_window_minutes: int = Field(15, ge=1, le=24 * 60)
    # Origins allowed to call the API from a browser (CORS); empty: CORS off.
    cors_origins: Annotated[list[str], NoDecode] = []
    # Admission control (roster.admission): requests at work at once per API process, how long others wait.
    max_concurrent_requests: int = Field(20, ge=1, le=500)
    request_queue_seconds: float = Field(10, gt=0, le=300)
    max_queued_requests: int = Field(1000, ge=0)
    # Operating Roster (SPEC §13): log format, /metrics, retention of stored uploads and of whole jobs.
    log_format: str = "text"
    metrics: bool = True
    upload_retention_days: int = Field(30, ge=0)
    job_retention_days: int | None = Field(None, ge=1)  # None: keep jobs forever
    purge_interval_seconds: float = Field(3600, gt=0)

    @field_validator("jwt_algorithms", mode="before")
    @classmethod
    def _split_algorithms(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().upper() for part in value.split(",") if part.strip()]
        return value

    @field_validator("jwt_algorithms")
    @classmethod
    def _known_algorithms(cls, value: list[str]) -> list[str]:
        unknown = [a for a in value if a not in HMAC_ALGORITHMS | ASYMMETRIC_ALGORITHMS]
        if unknown or not value:
            raise ValueError(f"unsupported JWT algorithm(s): {', '.join(unknown) or '(none)'}")
        if set(value) & HMAC_ALGORITHMS and set(value) & ASYMMETRIC_ALGORITHMS:
            # Mixing families invites key-confusion attacks (an HS token signed with a public key).
            raise ValueError("do not mix HMAC (HS*) and public-key algorithms")
        return value

    @field_validator("jwt_secret")
    @classmethod
    def _long_secret(cls, value: str) -> str:
        if value and len(value) < MIN_SECRET_LENGTH:
            raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters (e.g. `openssl rand -hex 32`)")
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not re.fullmatch(r"https?://[^\s/?#]+", origin):
                raise ValueError(f"each origin is scheme://host[:port] (or *), not {origin!r}")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value.upper()

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        if value.lower() not in LOG_FORMATS:
            raise ValueError(f"must be one of {', '.join(LOG_FORMATS)}")
        return value.lower()

    @field_validator("job_retention_days", mode="before")
    @classmethod
    def _keep_forever(cls, value: object) -> object:
        return None if isinstance(value, str) and value.strip().lower() in ("", "keep", "forever") else value

    @field_validator("public_base_url", "jwks_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s]*)?", value):
            raise ValueError(f"must be an http(s) URL, not {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _resolve(self) -> Settings:
        self.database_url = _database_url(self.database_url, self.data_dir)
        if self.uses_public_keys and not (self.jwt_public_key_file or self.jwks_url):
            raise ValueError(
                "ROSTER_JWT_ALGORITHMS names public-key algorithms: set ROSTER_JWT_PUBLIC_KEY_FILE or ROSTER_JWKS_URL"
            )
        if not self.uses_public_keys and (self.jwt_public_key_file or self.jwks_url):
            # Otherwise the key would be silently ignored and every IdP token refused.
            raise ValueError(
                "ROSTER_JWT_PUBLIC_KEY_FILE/ROSTER_JWKS_URL need public-key algorithms in ROSTER_JWT_ALGORITHMS (e.g. "
                "RS256)"
            )
        if self.jwt_public_key_file:
            _check_public_key(self.jwt_public_key_file, self.jwt_algorithms)
        if self.jwt_secret and not self.uses_public_keys and len(self.jwt_secret) < self.min_secret_length:
            raise ValueError(f"ROSTER_JWT_SECRET: {self._secret_length_rule()}")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def uses_public_keys(self) -> bool:
        return bool(set(self.jwt_algorithms) & ASYMMETRIC_ALGORITHMS)

    @property
    def worker_count(self) -> int:
        """Workers run inside `roster serve`: one on the embedded default, none when scaled out."""
        if self.embedded_workers is not None:
            return self.embedded_workers
        return 1 if self.is_sqlite else 0

    @property
    def min_secret_length(self) -> int:
        """Characters the HS secret needs: the longest hash among the configured HS algorithms (RFC 7518 §3.2)."""
        return max(
            (HMAC_SECRET_LENGTHS[a] for a in self.jwt_algorithms if a in HMAC_SECRET_LENGTHS), default=MIN_SECRET_LENGTH
        )

    def _secret_length_rule(self) -> str:
        strongest = max(self.jwt_algorithms, key=lambda a: HMAC_SECRET_LENGTHS.get(a, 0))
        return f"must be at least {self.min_secret_length} characters for {strongest} (e.g. `openssl rand -hex 32`)"

    def require_shared_secret(self) -> None:
        """On PostgreSQL, Roster's own tokens need ROSTER_JWT_SECRET: scaled out, every API process must verify
        every other's tokens, which a secret generated per machine cannot do. Checked by create_app (through
        the token service) and by the CLI before it migrates; SQLite keeps the generated secret."""
        if not self.is_sqlite and not self.uses_public_keys and not self.jwt_secret:
            raise ConfigError(
                "ROSTER_JWT_SECRET: required with PostgreSQL, where several API processes share one secret"
            )

    def signing_secret(self) -> str:
        """The HS secret; on the embedded default (SQLite), generated once and kept in the data directory."""
        if self.jwt_secret:
            return self.jwt_secret
        self.require_shared_secret()
        path = self.data_dir / "jwt-secret"
        try:
            if not path.exists():
                _create_secret_file(path)
            secret = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"ROSTER_DATA_DIR: cannot keep the generated JWT secret in {path}: {exc.strerror or exc}"
            ) from None
        if len(secret) < self.min_secret_length:
            rule = self._secret_length_rule()
            raise ConfigError(
                f"ROSTER_DATA_DIR: {path} holds no usable secret ({rule}); delete it to generate a new one"
            )
        return secret


def _database_url(value: str, data_dir: Path) -> str:
    if not value:
        return f"sqlite:///{(data_dir / 'roster.db').as_posix()}"
    try:
        url = make_url(value)
    except ArgumentError:
        raise ValueError("ROSTER_DATABASE_URL is not a database URL") from None
    if url.drivername in POSTGRES_ALIASES:
        url = url.set(drivername="postgresql+psycopg")
        value = url.render_as_string(hide_password=False)
    if url.drivername not in SUPPORTED_DRIVERS:
        raise ValueError(
            f"ROSTER_DATABASE_URL: driver {url.drivername!r} is not supported; "
            "use sqlite:///path/to/file.db or postgresql+psycopg://user@host/db"
        )
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        # Each pooled connection would get its own empty in-memory database.
        raise ValueError("ROSTER_DATABASE_URL: SQLite needs a file path, e.g. sqlite:///roster-data/roster.db")
    return value


def _check_public_key(path: Path, algorithms: list[str]) -> None:
    import jwt

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"ROSTER_JWT_PUBLIC_KEY_FILE cannot be read: {path}: {exc.strerror or exc}") from None
    for alg in algorithms:
        try:
            jwt.get_algorithm_by_name(alg).prepare_key(data)
        except Exception:  # pyjwt and cryptography raise several types for an unusable key
            raise ValueError(f"ROSTER_JWT_PUBLIC_KEY_FILE is not a PEM public key usable with {alg}: {path}") from None


def _create_secret_file(path: Path) -> None:
    """Writes a fresh secret under a temporary name, then links it into place.

    The link is atomic and fails when the file exists, so two processes starting at once agree on
    one secret and neither ever reads a half-written file. The file is created 0600.
    """
    from roster.private import private_dir

    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))  # 64 characters: long enough for HS512 too
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)


def _one_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = " ".join(err["msg"].removeprefix("Value error, ").split())
        parts.append(f"ROSTER_{loc.upper()}: {msg}" if loc else msg)
    return "; ".join(parts)


@lru_cache
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
