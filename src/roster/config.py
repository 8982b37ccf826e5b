"""Settings from the environment (prefix ROSTER_) and an optional .env file."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

SUPPORTED_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")
ASYMMETRIC_ALGORITHMS = {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256"}
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
    public_base_url: str = "http://localhost:8000"
    job_lease_seconds: int = Field(30, ge=2)
    job_max_attempts: int = Field(3, ge=1)
    worker_poll_seconds: float = Field(0.5, gt=0)
    log_level: str = "INFO"

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
            raise ValueError("do not mix HMAC (HS*) and public-key algorithms in JWT_ALGORITHMS")
        return value

    @model_validator(mode="after")
    def _resolve(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'roster.db').as_posix()}"
        try:
            url = make_url(self.database_url)
        except ArgumentError:
            raise ValueError(f"ROSTER_DATABASE_URL is not a database URL: {self.database_url!r}") from None
        if url.drivername not in SUPPORTED_DRIVERS:
            raise ValueError(
                f"ROSTER_DATABASE_URL: driver {url.drivername!r} is not supported; "
                "use sqlite:///path/to/file.db or postgresql+psycopg://user@host/db"
            )
        if self.uses_public_keys and not (self.jwt_public_key_file or self.jwks_url):
            raise ValueError("ROSTER_JWT_ALGORITHMS names public-key algorithms: set ROSTER_JWT_PUBLIC_KEY_FILE or ROSTER_JWKS_URL")
        if self.jwt_public_key_file and not self.jwt_public_key_file.is_file():
            raise ValueError(f"ROSTER_JWT_PUBLIC_KEY_FILE does not exist: {self.jwt_public_key_file}")
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

    def signing_secret(self) -> str:
        """The HS secret; on the embedded default, generated once and kept in the data directory."""
        if self.jwt_secret:
            return self.jwt_secret
        path = self.data_dir / "jwt-secret"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        # O_EXCL: two processes starting at once keep the first one's secret.
        try:
            with open(path, "x") as fh:
                fh.write(secret)
            path.chmod(0o600)
        except FileExistsError:
            return path.read_text().strip()
        self.jwt_secret = secret
        return secret


def _one_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"ROSTER_{loc.upper()}: {msg}" if loc else msg)
    return "; ".join(parts)


@lru_cache
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
