"""The sample cURL request of OpenClinica's Participants/Bulk page (seed 000_8d333209b674bbb7.txt), with only the
host, the token and the file path changed, works as written: a lower-case `bearer`, a `content-type` header
naming a boundary of its own (curl then sends its real boundary after it), the OIDs percent-encoded."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.live import LiveServer
from tests.support import Api

# As printed in the seed (its line breaks are the PDF's wrapping), the placeholders kept.
SEED_REQUEST = (
    "curl -X POST "
    "'{{customerName}}/pages/auth/api/clinicaldata/studies/S_JU0%28TEST%29/sites/S_BOSTON_7642%28TEST%29"
    "/participants/bulk?register=y' "
    "-H 'Authorization: bearer {{authentication token}}' "
    "-H 'content-type: multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW' "
    "-F 'file=@C:directoryfile.csv'"
)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_seeds_sample_curl_request_works_as_written(server: LiveServer, api: Api, tmp_path) -> None:
    api.setup_study("S_JU0(TEST)", sites=("S_BOSTON_7642(TEST)",), participateActive=True)
    headers = api.user("coordinator", "clinical_research_coordinator", "S_JU0(TEST)", "S_BOSTON_7642(TEST)")
    (tmp_path / "participants.csv").write_text("ParticipantID,firstName\r\nJU0-001,Ada\r\n", encoding="utf-8")
    command = (
        SEED_REQUEST.replace("{{customerName}}", server.url)
        .replace("{{authentication token}}", headers["Authorization"].removeprefix("Bearer "))
        .replace("C:directoryfile.csv", "participants.csv")
    )
    result = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    match = re.fullmatch(r"job uuid: ([0-9a-f-]{36})", result.stdout)
    assert match, result.stdout
    job = api.ok(api.client.get(f"/pages/auth/api/jobs/{match.group(1)}", headers=headers))
    assert (job["register"], job["sourceFileName"], job["siteOid"]) == (True, "participants.csv", "S_BOSTON_7642(TEST)")
