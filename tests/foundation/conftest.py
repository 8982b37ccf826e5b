"""Fixtures for the foundation tests: apps with other token settings, key pairs, hand-made tokens."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient

from roster.app import create_app
from roster.config import Settings
from roster.db import Database

SECRET = "test-secret-" + "x" * 32  # the secret of the `settings` fixture in tests/conftest.py


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def craft(header: dict[str, Any], claims: dict[str, Any], hmac_key: bytes | None = None) -> str:
    """A JWT assembled by hand, so that tokens pyjwt refuses to make (alg none, key confusion) can be sent."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = b"" if hmac_key is None else hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def claims_for(username: str, **extra: Any) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    return {
        "sub": username,
        "iat": int(now.timestamp()),
        "exp": int((now + dt.timedelta(minutes=5)).timestamp()),
        **extra,
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class KeyPair:
    def __init__(self, private_key: Any, directory: Path, name: str) -> None:
        self.private_key = private_key
        self.public_pem = private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_file = directory / f"{name}.pem"
        self.public_file.write_bytes(self.public_pem)

    def sign(self, claims: dict[str, Any], algorithm: str, **headers: Any) -> str:
        return jwt.encode(claims, self.private_key, algorithm=algorithm, headers=headers or None)


@pytest.fixture(scope="session")
def keys(tmp_path_factory) -> dict[str, KeyPair]:
    directory = tmp_path_factory.mktemp("keys")
    return {
        "rsa": KeyPair(rsa.generate_private_key(public_exponent=65537, key_size=2048), directory, "rsa"),
        "rsa_other": KeyPair(rsa.generate_private_key(public_exponent=65537, key_size=2048), directory, "rsa_other"),
        "ec": KeyPair(ec.generate_private_key(ec.SECP256R1()), directory, "ec"),
    }


@pytest.fixture
def make_client(settings: Settings) -> Iterator[Callable[..., TestClient]]:
    """A client for an app on the same database as `client`, with some settings replaced."""
    opened: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        fields = {
            "database_url": settings.database_url,
            "jwt_secret": SECRET,
            "data_dir": settings.data_dir,
            "embedded_workers": 0,
        }
        other = Settings(**(fields | overrides))
        c = TestClient(create_app(other, db=Database(other.database_url)))
        c.__enter__()
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.__exit__(None, None, None)
