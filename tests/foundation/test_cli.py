"""SPEC §3: the `roster` command, run as a user runs it (a subprocess with environment variables)."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from roster.demo import DEMO_USERS, SITES, STUDY_OID
from tests.foundation.conftest import bearer
from tests.support import P

ROSTER = Path(sys.executable).with_name("roster")  # the installed console script


def _command(args: list[str], env: dict[str, str], cwd: Path) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ROSTER_")}
    command = [str(ROSTER)] if ROSTER.exists() else [sys.executable, "-m", "roster.cli"]
    return {"args": command + args, "env": clean | env, "cwd": cwd, "text": True}


def run(
    args: list[str], env: dict[str, str], cwd: Path, stdin: str | None = None, timeout: int = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(**_command(args, env, cwd), input=stdin, capture_output=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_one_line_error(result: subprocess.CompletedProcess, variable: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0] and "Traceback" not in result.stderr
    assert "Uvicorn running" not in result.stdout + result.stderr


SERVE_REFUSES = [
    ({"ROSTER_DATABASE_URL": "mysql://roster@localhost/roster"}, "ROSTER_DATABASE_URL"),
    ({"ROSTER_DATABASE_URL": "not a url"}, "ROSTER_DATABASE_URL"),
    ({"ROSTER_TOKEN_TTL_MINUTES": "an hour"}, "ROSTER_TOKEN_TTL_MINUTES"),
    ({"ROSTER_JWT_ALGORITHMS": "none"}, "ROSTER_JWT_ALGORITHMS"),
    ({"ROSTER_JWT_ALGORITHMS": "HS256,RS256"}, "ROSTER_JWT_ALGORITHMS"),
    ({"ROSTER_JWT_ALGORITHMS": "RS256"}, "ROSTER_JWT_PUBLIC_KEY_FILE"),
    ({"ROSTER_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"}, "ROSTER_JWT_SECRET"),
    ({"ROSTER_JWT_ALGORITHMS": "HS512", "ROSTER_JWT_SECRET": "s" * 40}, "ROSTER_JWT_SECRET"),
    (
        {"ROSTER_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/nowhere", "ROSTER_JWT_SECRET": "s" * 40},
        "database",
    ),
]


def test_serve_refuses_a_bad_setting_with_one_line_before_listening(tmp_path):
    """Table-driven; the cases run as concurrent processes because each start costs a second of imports."""
    started = []
    for i, (env, variable) in enumerate(SERVE_REFUSES):
        port = free_port()
        cmd = _command(["serve", "--port", str(port)], env | {"ROSTER_DATA_DIR": str(tmp_path / f"data{i}")}, tmp_path)
        started.append((env, variable, port, subprocess.Popen(**cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
    wrong = []
    for env, variable, port, process in started:
        try:
            stdout, stderr = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()  # it started serving: the worst outcome
            stdout, stderr = process.communicate()
        try:
            assert_one_line_error(
                subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), variable
            )
            with socket.socket() as s:
                assert s.connect_ex(("127.0.0.1", port)) != 0  # nothing was left listening
        except AssertionError as exc:
            wrong.append(f"{env}: {exc}")
    assert not wrong, "\n".join(wrong)


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
def test_db_upgrade_creates_a_fresh_database(tmp_path, backend_name, request):
    if backend_name == "sqlite":
        url, drop = f"sqlite:///{tmp_path}/fresh/roster.db", None
    else:
        server = request.getfixturevalue("pg_server_url")
        name = f"roster_cli_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = make_url(server).set(database=name).render_as_string(hide_password=False)

        def drop() -> None:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

    try:
        env = {"ROSTER_DATABASE_URL": url, "ROSTER_DATA_DIR": str(tmp_path / "data")}
        first = run(["db", "upgrade"], env, tmp_path)
        assert first.returncode == 0, first.stderr
        assert {"studies", "sites", "users", "role_assignments", "participants", "jobs", "alembic_version"} <= _tables(
            url
        )
        again = run(["db", "upgrade"], env, tmp_path)
        assert again.returncode == 0, again.stderr
    finally:
        if drop:
            drop()


def _env(settings, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "ROSTER_DATABASE_URL": settings.database_url,
        "ROSTER_DATA_DIR": str(tmp_path / "cli-data"),
        "ROSTER_JWT_SECRET": settings.jwt_secret,
        **extra,
    }


def test_create_user_with_password_on_stdin(client, db, settings, tmp_path):
    result = run(
        ["admin", "create-user", "Opal", "--admin", "--password-stdin"],
        _env(settings, tmp_path),
        tmp_path,
        stdin="a-long-password\n",
    )
    assert result.returncode == 0, result.stderr
    assert "a-long-password" not in result.stdout + result.stderr
    r = client.post("/user-service/api/oauth/token", json={"username": "opal", "password": "a-long-password"})
    assert r.status_code == 200
    me = client.get(f"{P}/me", headers=bearer(r.text)).json()
    assert me["username"] == "Opal" and me["admin"] is True


def test_create_user_with_password_from_the_environment(client, db, settings, tmp_path):
    env = _env(settings, tmp_path, ROSTER_PASSWORD="from-the-environment")
    result = run(["admin", "create-user", "pat"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    r = client.post("/user-service/api/oauth/token", json={"username": "pat", "password": "from-the-environment"})
    assert r.status_code == 200
    assert client.get(f"{P}/me", headers=bearer(r.text)).json()["admin"] is False
    # The same name again is refused in one line.
    again = run(["admin", "create-user", "PAT"], env, tmp_path)
    assert again.returncode != 0 and len(again.stderr.strip().splitlines()) == 1 and "userAlreadyExists" in again.stderr


@pytest.mark.parametrize("how", ["no password", "short password", "password with the username"])
def test_create_user_refuses_a_missing_or_weak_password(tmp_path, how):
    """SPEC §14: the CLI applies the setup API's password rules (12+ characters, not the username)."""
    env = {"ROSTER_DATABASE_URL": f"sqlite:///{tmp_path}/r.db", "ROSTER_DATA_DIR": str(tmp_path / "data")}
    env |= {
        "short password": {"ROSTER_PASSWORD": "elevenchars"},
        "password with the username": {"ROSTER_PASSWORD": "my-name-is-PAT-ok"},
    }.get(how, {})
    result = run(["admin", "create-user", "pat"], env, tmp_path)
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    if how != "no password":
        assert "errorCode.weakPassword" in result.stderr and env["ROSTER_PASSWORD"] not in result.stderr


def test_demo_is_idempotent_and_prints_a_working_token(api, client, db, settings, make_client, tmp_path, backend):
    env = {"ROSTER_DATABASE_URL": settings.database_url, "ROSTER_DATA_DIR": str(tmp_path / "demo-data")}
    if backend == "postgresql":
        # Scaled out there is no per-machine secret: the demo refuses, as `roster serve` does.
        assert_one_line_error(run(["demo"], env, tmp_path), "ROSTER_JWT_SECRET")
        env["ROSTER_JWT_SECRET"] = settings.jwt_secret
    # On SQLite, no ROSTER_JWT_SECRET: the token is signed with the secret generated into the data dir.
    outputs = []
    for _ in range(2):
        result = run(["demo"], env, tmp_path)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    tokens = [re.search(r"^(eyJ[\w-]+\.[\w-]+\.[\w-]+)$", out, re.M).group(1) for out in outputs]
    assert "curl -X POST" in outputs[1] and "S_DEMO%28TEST%29" in outputs[1] and "Authorization: Bearer" in outputs[1]

    # `roster serve` with the same settings
    server = make_client(jwt_secret=env.get("ROSTER_JWT_SECRET", ""), data_dir=tmp_path / "demo-data")
    for token in tokens:
        me = server.get(f"{P}/me", headers=bearer(token))
        assert me.status_code == 200, me.text
        assert me.json()["username"] == "datamanager"
        assert me.json()["studies"][0]["oid"] == STUDY_OID
        assert all(s["canWrite"] for s in me.json()["studies"][0]["sites"])

    studies = api.ok(client.get(f"{P}/admin/studies", headers=api.admin))
    assert [s["oid"] for s in studies] == [STUDY_OID]
    assert [s["oid"] for s in studies[0]["sites"]] == [oid for oid, _ in SITES]
    users = {u["username"] for u in api.ok(client.get(f"{P}/admin/users", headers=api.admin))}
    assert users == {u[0] for u in DEMO_USERS} | {"root-admin"}
    roles = api.ok(client.get(f"{P}/admin/users/datamanager/roles", headers=api.admin))
    assert len(roles) == 1  # not granted twice


def test_the_demo_curl_line_ends_the_plain_text_answer_with_a_line_break(db, settings):
    """The answer is exactly `job uuid: <uuid>` (SPEC §4), no line break: curl must add one, or the next shell
    prompt is printed on the same line."""
    from roster import demo

    args = shlex.split(demo.run(settings, db, "http://127.0.0.1:8000").curl)
    assert args[0] == "curl" and args[args.index("-w") + 1] == "\\n"  # curl's write-out: a newline after the body


def test_serve_migrates_a_fresh_database_and_answers(tmp_path):
    import httpx

    port = free_port()
    env = {"ROSTER_DATA_DIR": str(tmp_path / "data"), "ROSTER_EMBEDDED_WORKERS": "0"}
    process = subprocess.Popen(
        **_command(["serve", "--port", str(port)], env, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.communicate()
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "roster serve did not start listening"
                time.sleep(0.3)
        assert r.status_code == 200 and r.json()["database"] == "sqlite"
        assert httpx.get(f"http://127.0.0.1:{port}{P}/me", timeout=5).status_code == 401
        assert (tmp_path / "data" / "roster.db").exists() and (tmp_path / "data" / "jwt-secret").exists()
    finally:
        process.terminate()
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
