"""The README's walkthrough (SPEC §12), taken from between its markers as `.ci/run` takes the test command,
run as written in bash against a live server set up by `roster demo`: curl first, then the client."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from roster.config import Settings
from tests.live import LiveServer

README = Path(__file__).resolve().parents[2] / "README.md"
VENV = Path(sys.executable).parent.parent
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def walkthrough() -> str:
    text = README.read_text(encoding="utf-8")
    block = text.split("<!-- walkthrough:start -->", 1)[1].split("<!-- walkthrough:end -->", 1)[0]
    # The commands of the fenced blocks; the prose between them is not run.
    lines, inside = [], False
    for line in block.splitlines():
        if line.startswith("```"):
            inside = not inside
        elif inside:
            lines.append(line)
    return "\n".join(lines)


def test_the_readme_walkthrough_runs_as_written(server: LiveServer, settings: Settings, tmp_path: Path) -> None:
    script = walkthrough()
    assert "curl" in script and ".venv/bin/roster upload" in script
    # The reader's directory: the venv, and `roster demo` run there (its sample CSV in ./roster-data).
    (tmp_path / ".venv").symlink_to(VENV)
    port = server.url.rsplit(":", 1)[1]
    env = {
        **os.environ,
        "ROSTER_DATABASE_URL": settings.database_url,
        "ROSTER_JWT_SECRET": settings.jwt_secret,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "PATH": f"{VENV / 'bin'}:{os.environ['PATH']}",
    }
    env.pop("ROSTER_URL", None)
    env.pop("ROSTER_TOKEN", None)
    demo = subprocess.run(
        [str(VENV / "bin" / "roster"), "demo", "--port", port],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert demo.returncode == 0, demo.stderr
    assert f"Server: {server.url} (start it with `roster serve --port {port}`)" in demo.stdout
    assert "caps enrollment at 1,000 participants" in demo.stdout
    assert f"{server.url}/pages/auth/api/clinicaldata/studies/S_DEMO%28TEST%29/" in demo.stdout

    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env={**env, "ROSTER_URL": server.url},
        input="roster-demo-password\n",
        capture_output=True,
        text=True,
        timeout=240,
        start_new_session=True,  # no terminal: `roster login` reads the password from stdin
    )
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert re.search(rf"^job {UUID}$", out, re.M)
    assert '"status":"COMPLETED"' in out and '"counts":{"rows":3,"processed":3,"created":2' in out
    assert '"outcome":"failed"' in out and "errorCode.invalidEmailAddress" in out
    assert out.count("Row,ParticipantID,Participant OID,Participate Status,Status,Message") == 2
    assert out.count("JUNO-007,Grace,Hopper,not-an-email") == 2
    # The client's upload of the same file: nothing new, the bad row again, exit status 1.
    assert "COMPLETED: 3 of 3 rows processed (0 created, 0 updated, 2 unchanged, 1 failed)" in out
    assert "exit status 1 (1: some rows failed)" in out
    assert re.search(r"^row 3\tline 4\tJUNO-007\t-\tfailed\temailAddress: errorCode.invalidEmailAddress$", out, re.M)
