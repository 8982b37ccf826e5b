"""What a coordinator does on the Bulk Actions Log page, as reusable steps for the browser tests."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from playwright.sync_api import Download, Locator, Page, expect

from tests.support import PASSWORD
from tests.web.constants import COORDINATOR

if TYPE_CHECKING:
    from tests.web.conftest import LiveServer

JOB_DONE_TIMEOUT = 30_000


def sign_in(page: Page, server: LiveServer, username: str = COORDINATOR, password: str = PASSWORD) -> None:
    page.goto(server.url + "/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_label("Study", exact=True)).to_be_visible()


def choose(page: Page, study: str, site: str) -> None:
    page.get_by_label("Study", exact=True).select_option(study)
    page.get_by_label("Site", exact=True).select_option(site)


def write_csv(directory: Path, name: str, lines: list[str]) -> Path:
    path = directory / name
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return path


def upload(page: Page, path: Path, register: bool = False, dry_run: bool = False) -> None:
    page.get_by_label("CSV or Excel file").set_input_files(str(path))
    if register:
        page.get_by_label("Register for Participate").check()
    if dry_run:
        page.get_by_label("Validate only").check()
    page.get_by_role("button", name="Upload", exact=True).click()


def job_row(page: Page, filename: str) -> Locator:
    name = page.locator(".file-name").get_by_text(filename, exact=True)
    return page.locator("#jobs-body tr").filter(has=name)


def wait_for_status(page: Page, filename: str, status: str, timeout: int = JOB_DONE_TIMEOUT) -> Locator:
    row = job_row(page, filename)
    expect(row).to_have_attribute("data-status", status, timeout=timeout)
    return row


def download(page: Page, button: Locator) -> tuple[Download, str]:
    with page.expect_download() as info:
        button.click()
    file = info.value
    return file, Path(file.path()).read_text(encoding="utf-8")


def log_rows(page: Page) -> Locator:
    return page.locator("#log-body tr")


def log_outcomes(page: Page) -> list[str]:
    return log_rows(page).evaluate_all("rows => rows.map(r => r.dataset.outcome)")


def notice_text(locator: Locator) -> str:
    return re.sub(r"\s+", " ", locator.inner_text()).strip()
