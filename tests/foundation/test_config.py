"""SPEC §2–§3: settings that cannot work stop start-up with one line; the generated JWT secret."""

from __future__ import annotations

import os
import stat
import threading

import pytest
from pydantic import ValidationError

from roster.app import create_app
from roster.auth.tokens import TokenService
from roster.config import ConfigError, Settings, get_settings
from roster.errors import Unauthorized


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A clean ROSTER_ environment, no .env file, and get_settings() read afresh."""
    for key in list(os.environ):
        if key.startswith("ROSTER_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ROSTER_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


# (environment, the variable the one line must name)
BAD = [
    ({"ROSTER_DATABASE_URL": "mysql://roster@db/roster"}, "ROSTER_DATABASE_URL"),
    ({"ROSTER_DATABASE_URL": "not a url"}, "ROSTER_DATABASE_URL"),
    ({"ROSTER_DATABASE_URL": "sqlite://"}, "ROSTER_DATABASE_URL"),
    ({"ROSTER_DATABASE_URL": "sqlite:///:memory:"}, "ROSTER_DATABASE_URL"),
    ({"ROSTER_DATABASE_URL": "postgresql+psycopg2://u@h/d"}, "ROSTER_DATABASE_URL"),
    ({"ROSTER_TOKEN_TTL_MINUTES": "sixty"}, "ROSTER_TOKEN_TTL_MINUTES"),
    ({"ROSTER_TOKEN_TTL_MINUTES": "0"}, "ROSTER_TOKEN_TTL_MINUTES"),
    ({"ROSTER_TOKEN_TTL_MINUTES": "-5"}, "ROSTER_TOKEN_TTL_MINUTES"),
    ({"ROSTER_JWT_ALGORITHMS": "none"}, "ROSTER_JWT_ALGORITHMS"),
    ({"ROSTER_JWT_ALGORITHMS": "HS256,RS256"}, "ROSTER_JWT_ALGORITHMS"),
    ({"ROSTER_JWT_ALGORITHMS": ""}, "ROSTER_JWT_ALGORITHMS"),
    ({"ROSTER_JWT_ALGORITHMS": "RS256"}, "ROSTER_JWT_PUBLIC_KEY_FILE"),
    (
        {"ROSTER_JWT_ALGORITHMS": "RS256", "ROSTER_JWT_PUBLIC_KEY_FILE": "/nonexistent/key.pem"},
        "ROSTER_JWT_PUBLIC_KEY_FILE",
    ),
    ({"ROSTER_JWT_PUBLIC_KEY_FILE": "{rsa}"}, "ROSTER_JWT_ALGORITHMS"),
    ({"ROSTER_JWT_ALGORITHMS": "ES256", "ROSTER_JWT_PUBLIC_KEY_FILE": "{rsa}"}, "ROSTER_JWT_PUBLIC_KEY_FILE"),
    ({"ROSTER_JWT_ALGORITHMS": "RS256", "ROSTER_JWT_PUBLIC_KEY_FILE": "{junk}"}, "ROSTER_JWT_PUBLIC_KEY_FILE"),
    ({"ROSTER_JWT_ALGORITHMS": "RS256", "ROSTER_JWKS_URL": "ftp://idp/jwks"}, "ROSTER_JWKS_URL"),
    ({"ROSTER_JWT_SECRET": "short"}, "ROSTER_JWT_SECRET"),
    ({"ROSTER_JWT_ALGORITHMS": "HS384", "ROSTER_JWT_SECRET": "s" * 47}, "ROSTER_JWT_SECRET"),
    ({"ROSTER_JWT_ALGORITHMS": "HS512", "ROSTER_JWT_SECRET": "s" * 63}, "ROSTER_JWT_SECRET"),
    ({"ROSTER_JWT_ALGORITHMS": "HS256,HS512", "ROSTER_JWT_SECRET": "s" * 48}, "ROSTER_JWT_SECRET"),
    ({"ROSTER_MAX_UPLOAD_BYTES": "0"}, "ROSTER_MAX_UPLOAD_BYTES"),
    ({"ROSTER_MAX_UPLOAD_BYTES": "100MB"}, "ROSTER_MAX_UPLOAD_BYTES"),
    ({"ROSTER_BATCH_SIZE": "0"}, "ROSTER_BATCH_SIZE"),
    ({"ROSTER_EMBEDDED_WORKERS": "-1"}, "ROSTER_EMBEDDED_WORKERS"),
    ({"ROSTER_LOG_LEVEL": "chatty"}, "ROSTER_LOG_LEVEL"),
    ({"ROSTER_PUBLIC_BASE_URL": "example.org"}, "ROSTER_PUBLIC_BASE_URL"),
]


def _fill(value: str, keys, tmp_path) -> str:
    if value == "{rsa}":
        return str(keys["rsa"].public_file)
    if value == "{junk}":
        junk = tmp_path / "junk.pem"
        junk.write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
        return str(junk)
    return value


@pytest.mark.parametrize("values,variable", BAD, ids=[" ".join(f"{k[7:]}={v}" for k, v in b.items()) for b, _ in BAD])
def test_a_bad_setting_is_one_line_naming_the_variable(env, keys, tmp_path, values, variable):
    for key, value in values.items():
        env.setenv(key, _fill(value, keys, tmp_path))
    with pytest.raises(ConfigError) as exc:
        get_settings()
    message = str(exc.value)
    assert "\n" not in message and variable in message, message


def test_error_messages_do_not_reveal_the_database_password(env):
    env.setenv("ROSTER_DATABASE_URL", "mysql://roster:hunter2-secret@db/roster")
    with pytest.raises(ConfigError) as exc:
        get_settings()
    assert "hunter2" not in str(exc.value)


def test_the_defaults_are_the_embedded_shape(env, tmp_path):
    s = get_settings()
    assert s.database_url == f"sqlite:///{(tmp_path / 'data' / 'roster.db').as_posix()}"
    assert (s.jwt_algorithms, s.token_ttl_minutes, s.max_upload_bytes, s.worker_count) == (
        ["HS256"],
        60,
        100 * 1024 * 1024,
        1,
    )


def test_plain_postgresql_urls_mean_psycopg(env):
    env.setenv("ROSTER_DATABASE_URL", "postgresql://roster:pw@db:5432/roster")
    s = get_settings()
    assert s.database_url == "postgresql+psycopg://roster:pw@db:5432/roster"
    assert not s.is_sqlite and s.worker_count == 0


def test_lists_and_case_are_forgiven(env, keys):
    env.setenv("ROSTER_JWT_ALGORITHMS", " rs256 , ps256 ")
    env.setenv("ROSTER_JWT_PUBLIC_KEY_FILE", str(keys["rsa"].public_file))
    env.setenv("ROSTER_LOG_LEVEL", "debug")
    env.setenv("ROSTER_PUBLIC_BASE_URL", "https://roster.example.org/")
    s = get_settings()
    assert s.jwt_algorithms == ["RS256", "PS256"] and s.log_level == "DEBUG"
    assert s.public_base_url == "https://roster.example.org"


def test_a_dotenv_file_is_read(env, tmp_path):
    (tmp_path / ".env").write_text("ROSTER_TOKEN_TTL_MINUTES=15\n")
    assert get_settings().token_ttl_minutes == 15


@pytest.mark.parametrize("algorithm,length", [("HS256", 32), ("HS384", 48), ("HS512", 64)])
def test_an_hs_secret_must_be_as_long_as_the_hash(env, algorithm, length):
    """RFC 7518 §3.2: the key is at least as long as the hash output; one character short is refused."""
    env.setenv("ROSTER_JWT_ALGORITHMS", algorithm)
    env.setenv("ROSTER_JWT_SECRET", "s" * (length - 1))
    with pytest.raises(ConfigError) as exc:
        get_settings()
    assert str(exc.value).startswith("ROSTER_JWT_SECRET: ") and f"at least {length} characters" in str(exc.value)
    env.setenv("ROSTER_JWT_SECRET", "s" * length)
    get_settings.cache_clear()
    tokens = TokenService(get_settings())
    assert tokens.username_from(tokens.issue("alice")[0]) == "alice"


def test_the_generated_secret_is_long_enough_for_hs512(tmp_path):
    settings = Settings(
        _env_file=None, database_url=f"sqlite:///{tmp_path}/r.db", data_dir=tmp_path / "data", jwt_algorithms=["HS512"]
    )
    tokens = TokenService(settings)
    assert tokens.username_from(tokens.issue("alice")[0]) == "alice"
    assert len((tmp_path / "data" / "jwt-secret").read_text().strip()) >= 64


def test_a_kept_secret_too_short_for_hs512_stops_start_up(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "jwt-secret").write_text("k" * 40)  # enough for HS256, not for HS512
    settings = Settings(
        _env_file=None, database_url=f"sqlite:///{tmp_path}/r.db", data_dir=data, jwt_algorithms=["HS512"]
    )
    with pytest.raises(ConfigError) as exc:
        create_app(settings)
    assert "ROSTER_DATA_DIR" in str(exc.value) and "64" in str(exc.value) and "\n" not in str(exc.value)


# ---------------------------------------------------------------- PostgreSQL needs a configured secret

PG_URL = "postgresql+psycopg://roster@127.0.0.1:1/roster"  # never connected to: the refusal comes first


def test_create_app_on_postgresql_without_a_secret_refuses_to_start(tmp_path):
    settings = Settings(_env_file=None, database_url=PG_URL, data_dir=tmp_path / "data")
    with pytest.raises(ConfigError) as exc:
        create_app(settings)
    assert str(exc.value).startswith("ROSTER_JWT_SECRET: required with PostgreSQL") and "\n" not in str(exc.value)
    assert not (tmp_path / "data").exists()  # no per-machine secret was generated


def test_create_app_on_postgresql_from_the_environment_refuses_to_start(env, tmp_path):
    env.setenv("ROSTER_DATABASE_URL", PG_URL)
    with pytest.raises(ConfigError) as exc:
        create_app()
    assert "ROSTER_JWT_SECRET" in str(exc.value) and "\n" not in str(exc.value)


def test_create_app_on_postgresql_starts_with_a_secret_or_an_identity_provider(tmp_path, keys):
    create_app(Settings(_env_file=None, database_url=PG_URL, data_dir=tmp_path / "data", jwt_secret="z" * 40))
    create_app(
        Settings(
            _env_file=None,
            database_url=PG_URL,
            data_dir=tmp_path / "data",
            jwt_algorithms=["RS256"],
            jwt_public_key_file=keys["rsa"].public_file,
        )
    )
    assert not (tmp_path / "data").exists()


def test_create_app_on_sqlite_without_a_secret_generates_one_in_the_data_dir(tmp_path):
    create_app(Settings(_env_file=None, database_url=f"sqlite:///{tmp_path}/r.db", data_dir=tmp_path / "data"))
    assert len((tmp_path / "data" / "jwt-secret").read_text().strip()) >= 32


def test_settings_built_in_code_fail_with_a_validation_error():
    with pytest.raises(ValidationError):
        Settings(database_url="mysql://x/y")


# ---------------------------------------------------------------- the generated secret


def test_the_generated_secret_is_kept_in_the_data_dir_and_shared(tmp_path):
    data = tmp_path / "data"
    first = TokenService(Settings(database_url=f"sqlite:///{tmp_path}/r.db", data_dir=data))
    second = TokenService(Settings(database_url=f"sqlite:///{tmp_path}/r.db", data_dir=data))
    token, _ = first.issue("alice")
    assert second.username_from(token) == "alice"
    path = data / "jwt-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_text().strip()) >= 32
    # Another data directory means another secret: its tokens are refused.
    other = TokenService(Settings(database_url=f"sqlite:///{tmp_path}/r.db", data_dir=tmp_path / "elsewhere"))
    with pytest.raises(Unauthorized):
        other.username_from(token)


def test_processes_starting_together_agree_on_one_secret(tmp_path):
    data = tmp_path / "data"
    secrets_seen: list[str] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        settings = Settings(database_url=f"sqlite:///{tmp_path}/r.db", data_dir=data)
        barrier.wait()
        secrets_seen.append(settings.signing_secret())

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(secrets_seen)) == 1 and len(secrets_seen) == 8
    assert [p.name for p in data.iterdir()] == ["jwt-secret"]  # no temporary files left behind


def test_a_configured_secret_writes_no_file(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path}/r.db", data_dir=tmp_path / "data", jwt_secret="z" * 40)
    TokenService(settings).issue("alice")
    assert not (tmp_path / "data" / "jwt-secret").exists()


def test_an_unusable_secret_file_stops_start_up(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "jwt-secret").write_text("\n")
    with pytest.raises(ConfigError) as exc:
        TokenService(Settings(database_url=f"sqlite:///{tmp_path}/r.db", data_dir=data))
    assert "ROSTER_DATA_DIR" in str(exc.value) and "\n" not in str(exc.value)
