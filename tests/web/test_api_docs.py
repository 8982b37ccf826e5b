"""`/docs` (SPEC §12): Swagger UI served by Roster itself (no request leaves the machine), Authorize with a
bearer token, and the bulk upload tried from its form."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.web.constants import SITE_A, STUDY

pytestmark = pytest.mark.browser
UPLOAD_OPERATION = (
    "#operations-bulk-upload_participants_pages_auth_api_clinicaldata_studies__studyOID__sites"
    "__siteOID__participants_bulk_post"
)


def test_docs_authorize_and_upload_a_file(page, server, web_setup, api, tmp_path) -> None:
    outside: list[str] = []

    def only_this_server(route) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    token = api.headers(web_setup.username)["Authorization"].removeprefix("Bearer ")
    csv = tmp_path / "from-docs.csv"
    csv.write_text("ParticipantID,firstName\r\nDOCS-001,Ada\r\n", encoding="utf-8")

    page.goto(server.url + "/docs")
    page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".modal-ux")
    dialog.get_by_label("auth-bearer-value").fill(token)
    dialog.get_by_role("button", name="Apply credentials").click()
    expect(dialog.get_by_role("button", name="Remove authorization")).to_be_visible()
    dialog.get_by_role("button", name="Close").click()

    operation = page.locator(UPLOAD_OPERATION)
    operation.locator(".opblock-summary").first.click()
    operation.locator("input[placeholder='studyOID']").fill(STUDY)
    operation.locator("input[placeholder='siteOID']").fill(SITE_A)
    operation.locator("input[type=file]").set_input_files(str(csv))
    operation.get_by_role("button", name="Execute").click()
    expect(operation.locator(".live-responses-table")).to_contain_text("job uuid:")
    assert outside == []
    jobs = api.ok(api.client.get(f"/pages/auth/api/studies/{STUDY}/jobs", headers=api.headers(web_setup.username)))
    assert [job["sourceFileName"] for job in jobs["items"]] == ["from-docs.csv"]
