"""SPEC §12: Schemathesis, with all its default checks (response-schema conformance included), finds no
failure in what `/openapi.json` says. Its CLI runs against a live server on each backend, with few
examples per operation and a fixed seed: the aim is that the description is true, which a handful of
cases per operation shows (the examples, coverage and fuzzing phases all run).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.live import LiveServer
from tests.support import Api

STUDY, SITE = "S_FUZZ(TEST)", "S_FUZZ_SITE(TEST)"
ST = Path(sys.executable).with_name("st")
CONFIG = Path(__file__).with_name("schemathesis.toml")


def test_schemathesis_finds_no_failure(server: LiveServer, api: Api, tmp_path: Path) -> None:
    # Something to find: a study with a site, where the fuzzing admin also manages the data.
    api.setup_study(STUDY, sites=(SITE,), participateActive=True)
    api.grant("root-admin", "data_manager", STUDY)
    token = api.admin["Authorization"]
    result = subprocess.run(
        [
            str(ST),
            "--config-file",
            str(CONFIG),
            "run",
            f"{server.url}/openapi.json",
            "-H",
            f"Authorization: {token}",
            "--max-examples",
            "3",
            "--seed",
            "1",
            "--phases",
            "examples,coverage,fuzzing",
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout or " passed" in result.stdout, result.stdout[-3000:]
