"""The Bulk Actions Log in a real browser: upload, live progress, the log, downloads, cancel, delete,
drag-and-drop, request-level errors, and data shown as text, never as HTML."""

from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.sinks import hooked
from tests.support import P
from tests.web.constants import COORDINATOR, SITE_A, SITE_B, STUDY
from tests.web.pages import (
    choose,
    download,
    job_row,
    log_outcomes,
    log_rows,
    notice_text,
    sign_in,
    upload,
    wait_for_status,
    write_csv,
)

pytestmark = pytest.mark.browser

XSS_ID = "<img src=x onerror=alert(1)>"
GOOD_AND_BAD = [
    "ParticipantID,firstName,lastName,emailAddress,mobileNumber",
    "WEB-001,Ada,Lovelace,ada@example.org,+44 2071234567",
    "WEB-002,Alan,Turing,alan@example.org,",
    "WEB-003,Grace,Hopper,not-an-email,+1 617555",
    "THIS-ID-IS-FAR-TOO-LONG-FOR-ROSTER-001,Kurt,Goedel,,",
    "WEB-005,Emmy,Noether,,",
]
LOG_HEADER = ["Row", "ParticipantID", "Participant OID", "Participate Status", "Status", "Message"]


def list_requests(page) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if "/jobs?" in r.url else None)
    return seen


def test_upload_good_and_bad_rows_then_read_filter_and_download_the_log(
    page, server, web_setup, tmp_path: Path
) -> None:
    polls = list_requests(page)
    sign_in(page, server)
    upload(page, write_csv(tmp_path, "good-and-bad.csv", GOOD_AND_BAD), register=True)
    expect(page.locator("#upload-message")).to_contain_text("Uploaded good-and-bad.csv to S_SITE_A(TEST) as job")

    row = wait_for_status(page, "good-and-bad.csv", "COMPLETED")
    expect(row.locator("td[data-label=Site]")).to_have_text(SITE_A)
    expect(row.locator("td[data-label=Status]")).to_have_text("Completed")
    expect(row.locator("td[data-label='Submitted by']")).to_contain_text(web_setup.username)
    expect(row.locator("td[data-label=Progress]")).to_contain_text(
        "5 of 5 rows · 3 created · 0 updated · 0 unchanged · 2 failed"
    )
    assert row.locator("progress").evaluate("p => p.value") == 1
    expect(row.locator("td[data-label=Started] time")).to_have_count(1)
    expect(row.locator("td[data-label=Completed] time")).to_have_count(1)
    expect(row.get_by_role("button", name="Cancel")).to_have_count(0)  # finished: nothing to cancel

    # Polling stops once nothing on the page is running.
    page.wait_for_timeout(300)
    settled = len(polls)
    page.wait_for_timeout(2500)
    assert len(polls) == settled

    # View: every row with its outcome; failed rows carry their codes and plain-words messages.
    row.get_by_role("button", name="View log of good-and-bad.csv").click()
    expect(page.locator("#log-title")).to_have_text("Log of good-and-bad.csv")
    expect(log_rows(page)).to_have_count(5)
    assert log_outcomes(page) == ["created", "created", "failed", "failed", "created"]
    statuses = page.locator("#log-body td[data-label='Participate status']").all_inner_texts()
    assert statuses == ["Created", "Created", "", "", "Created"]  # registered: register=y was sent
    expect(page.locator("#log-page")).to_contain_text("rows 1–5 of 5")
    # The screenshot in docs/ is this view: a finished job and its log.
    target = os.environ.get("ROSTER_WEB_SCREENSHOT")
    page.screenshot(path=target or str(tmp_path / "bulk-actions-log.png"), full_page=True)

    page.get_by_label("Outcome").select_option("failed")
    expect(log_rows(page)).to_have_count(2)
    assert log_outcomes(page) == ["failed", "failed"]
    email_row = log_rows(page).nth(0)
    expect(email_row.locator("td[data-label='Participant ID']")).to_have_text("WEB-003")
    expect(email_row.locator("td[data-label=Errors]")).to_contain_text("errorCode.invalidEmailAddress")
    expect(email_row.locator("td[data-label=Errors]")).to_contain_text(
        "emailAddress: Email address value is not a valid email address."
    )
    expect(log_rows(page).nth(1).locator("td[data-label=Errors]")).to_contain_text(
        "errorCode.participantIDLongerThan30Characters"
    )

    # Download (OpenClinica's log CSV) from the table, failed rows from the log view.
    file, text = download(page, row.get_by_role("button", name="Download log of good-and-bad.csv"))
    assert file.suggested_filename == "good-and-bad-log.csv"
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == LOG_HEADER
    assert [line[4] for line in lines[1:]] == ["Created", "Created", "Failed", "Failed", "Created"]
    assert lines[3][5] == "errorCode.invalidEmailAddress"

    file, text = download(page, page.locator("#log").get_by_role("button", name="Failed rows"))
    assert file.suggested_filename == "good-and-bad-failed-rows.csv"
    failed = list(csv.reader(io.StringIO(text)))
    assert failed[0] == GOOD_AND_BAD[0].split(",")
    assert [line[0] for line in failed[1:]] == ["WEB-003", "THIS-ID-IS-FAR-TOO-LONG-FOR-ROSTER-001"]


def test_log_pages_through_a_big_job(page, server, web_setup, tmp_path: Path) -> None:
    lines = ["ParticipantID,firstName"] + [f"PAGE-{n:04d},Name{n}" for n in range(1, 121)]
    sign_in(page, server)
    upload(page, write_csv(tmp_path, "paged.csv", lines))
    row = wait_for_status(page, "paged.csv", "COMPLETED")
    row.get_by_role("button", name="View log of paged.csv").click()
    page.get_by_label("Rows per page").select_option("50")
    expect(log_rows(page)).to_have_count(50)
    expect(page.locator("#log-page")).to_have_text("Page 1 of 3 · rows 1–50 of 120")
    page.locator("#log").get_by_role("button", name="Next page").click()
    expect(page.locator("#log-page")).to_have_text("Page 2 of 3 · rows 51–100 of 120")
    expect(log_rows(page).first.locator("td[data-label='Participant ID']")).to_have_text("PAGE-0051")
    page.locator("#log").get_by_role("button", name="Next page").click()
    expect(log_rows(page)).to_have_count(20)
    expect(page.locator("#log").get_by_role("button", name="Next page")).to_be_disabled()
    page.keyboard.press("Escape")
    expect(page.locator("#log")).to_be_hidden()
    expect(row.get_by_role("button", name="View log of paged.csv")).to_be_focused()


def test_html_in_data_is_shown_as_text(page, server, web_setup, watch, tmp_path: Path) -> None:
    page.on("dialog", lambda d: (watch.dialogs.append(d.message), d.dismiss()))
    lines = ["ParticipantID,firstName", f"{XSS_ID},Mallory", "WEB-SAFE,<script>alert(2)</script>"]
    sign_in(page, server)
    upload(page, write_csv(tmp_path, "markup.csv", lines))
    row = wait_for_status(page, "markup.csv", "COMPLETED")
    row.get_by_role("button", name="View log of markup.csv").click()
    expect(log_rows(page)).to_have_count(2)
    cell = log_rows(page).nth(0).locator("td[data-label='Participant ID']")
    expect(cell).to_have_text(XSS_ID)
    expect(log_rows(page).nth(0).locator("td[data-label=Errors]")).to_contain_text(
        "errorCode.participantIDContainsUnsupportedHTMLCharacter"
    )
    assert page.locator("#log img, #jobs-body img, #log script").count() == 0
    page.wait_for_timeout(300)
    assert watch.dialogs == []


def test_request_level_errors_are_shown_in_plain_words_next_to_their_code(
    page, server, web_setup, tmp_path: Path
) -> None:
    sign_in(page, server)
    message = page.locator("#upload-message")

    page.get_by_role("button", name="Upload", exact=True).click()
    expect(message).to_have_text("Choose a CSV or Excel file first.")

    not_csv = tmp_path / "notes.txt"
    not_csv.write_text("just some notes\n")
    upload(page, not_csv)
    expect(message).to_contain_text("notes.txt was not accepted")
    expect(message.locator("code")).to_have_text("errorCode.notSupportedFileFormat")
    expect(message.locator(".error-detail")).to_contain_text(".csv")  # the server's plain words

    upload(page, write_csv(tmp_path, "no-id.csv", ["firstName,lastName", "Ada,Lovelace"]))
    expect(message.locator("code")).to_have_text("errorCode.missingParticipantIDColumn")
    assert "ParticipantID" in notice_text(message)
    expect(page.locator("#jobs-body tr")).to_have_count(0)


def test_cancel_a_running_job(page, start_server, web_setup, tmp_path: Path) -> None:
    # Small batches, each paced by a few milliseconds, make a few thousand rows run for many seconds
    # however fast the machine is, so the job is surely still running when Cancel is clicked.
    server = start_server(batch_size=2, batch_sinks=hooked(before=lambda _job, _plan: time.sleep(0.01)))
    lines = ["ParticipantID,firstName"] + [f"SLOW-{n:05d},Name{n}" for n in range(1, 4001)]
    sign_in(page, server)
    upload(page, write_csv(tmp_path, "slow.csv", lines))
    row = wait_for_status(page, "slow.csv", "IN_PROGRESS")
    # Live progress while it runs: a bar and the counts so far.
    expect(row.locator("td[data-label=Progress]")).to_contain_text(" of 4,000 rows")
    row.get_by_role("button", name="Cancel slow.csv").click()
    row = wait_for_status(page, "slow.csv", "CANCELLED")
    expect(row.locator("td[data-label=Status]")).to_have_text("Cancelled")
    expect(page.locator("#jobs-message")).to_have_text("slow.csv: Cancelled.")
    expect(row.get_by_role("button", name="Cancel slow.csv")).to_have_count(0)
    processed = row.locator("progress").evaluate("p => p.value")
    assert 0 < processed < 1

    # Rows applied before the cancel stay, and are logged.
    row.get_by_role("button", name="View log of slow.csv").click()
    expect(page.locator("#log-summary")).to_contain_text("Cancelled")
    assert log_rows(page).count() > 0


def test_delete_a_job(page, server, web_setup, tmp_path: Path) -> None:
    sign_in(page, server)
    upload(page, write_csv(tmp_path, "to-delete.csv", GOOD_AND_BAD[:2]))
    row = wait_for_status(page, "to-delete.csv", "COMPLETED")
    row.get_by_role("button", name="View log of to-delete.csv").click()
    expect(page.locator("#log")).to_be_visible()
    page.once("dialog", lambda d: d.accept())
    row.get_by_role("button", name="Delete to-delete.csv").click()
    expect(job_row(page, "to-delete.csv")).to_have_count(0)
    expect(page.locator("#jobs-message")).to_contain_text("Deleted the job for to-delete.csv")
    expect(page.locator("#log")).to_be_hidden()


def test_dropping_a_file_on_the_page_selects_it_for_upload(page, server, web_setup) -> None:
    sign_in(page, server)
    content = "\r\n".join(GOOD_AND_BAD[:3]) + "\r\n"
    transfer = page.evaluate_handle(
        """content => {
            const dt = new DataTransfer();
            dt.items.add(new File([content], 'dropped.csv', { type: 'text/csv' }));
            return dt;
        }""",
        content,
    )
    page.dispatch_event("main", "dragenter", {"dataTransfer": transfer})
    expect(page.locator("#drop-overlay")).to_be_visible()
    page.dispatch_event("main", "drop", {"dataTransfer": transfer})
    expect(page.locator("#drop-overlay")).to_be_hidden()
    expect(page.locator("#upload-message")).to_contain_text("Selected dropped.csv")
    expect(page.get_by_role("button", name="Upload", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    row = wait_for_status(page, "dropped.csv", "COMPLETED")
    expect(row.locator("td[data-label=Progress]")).to_contain_text("2 created")


def test_jobs_of_other_users_and_other_sites(page, server, web_setup, api) -> None:
    # The coordinator's job, uploaded by a script; a study-level data manager looks at the page.
    files = {"file": ("from-script.csv", "ParticipantID\r\nSCRIPT-1\r\n", "text/csv")}
    url = f"{P}/clinicaldata/studies/{STUDY}/sites/{SITE_A}/participants/bulk"
    assert api.client.post(url, files=files, headers=api.headers(COORDINATOR)).status_code == 200
    api.user("manager", "data_manager", STUDY)

    sign_in(page, server, username="manager")
    choose(page, STUDY, SITE_A)
    row = wait_for_status(page, "from-script.csv", "COMPLETED")
    expect(row.locator("td[data-label='Submitted by']")).to_contain_text(COORDINATOR)
    # Only the creator (or an admin) may delete a job.
    expect(row.get_by_role("button", name="Delete")).to_have_count(0)
    expect(row.get_by_role("button", name="View log of from-script.csv")).to_be_visible()

    page.get_by_label("Site", exact=True).select_option(SITE_B)
    expect(page.locator("#jobs-empty")).to_be_visible()
    page.get_by_label("All sites of the study").check()
    row = job_row(page, "from-script.csv")
    expect(row.locator("td[data-label=Site]")).to_have_text(SITE_A)


def test_an_excel_workbook_is_accepted_chosen_or_dropped(page, server, web_setup, tmp_path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    for values in (
        [*GOOD_AND_BAD[0].split(","), "Notes"],
        ["XL-001", "Ada", "Lovelace", "ada@example.org", None, 42],
        ["XL-002", "Grace", "Hopper", "not-an-email", None, None],
    ):
        wb.active.append(values)
    path = tmp_path / "sheet.xlsx"
    wb.save(path)
    sign_in(page, server)
    accept = page.locator("#file").get_attribute("accept")
    assert ".xlsx" in accept.split(",")
    upload(page, path)
    row = wait_for_status(page, "sheet.xlsx", "COMPLETED")
    expect(row.locator("td[data-label=Progress]")).to_contain_text("1 created · 0 updated · 0 unchanged · 1 failed")
    file, text = download(page, row.get_by_role("button", name="Failed rows"))
    assert file.suggested_filename == "sheet-failed-rows.csv"
    assert list(csv.reader(io.StringIO(text))) == [
        [*GOOD_AND_BAD[0].split(","), "Notes"],
        ["XL-002", "Grace", "Hopper", "not-an-email", "", ""],
    ]

    # Dropped on the page: the same workbook's bytes as a File, selected and uploaded.
    transfer = page.evaluate_handle(
        """bytes => {
            const dt = new DataTransfer();
            const type = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';
            dt.items.add(new File([new Uint8Array(bytes)], 'dropped.xlsx', { type }));
            return dt;
        }""",
        list(path.read_bytes()),
    )
    page.dispatch_event("main", "dragenter", {"dataTransfer": transfer})
    page.dispatch_event("main", "drop", {"dataTransfer": transfer})
    expect(page.locator("#upload-message")).to_contain_text("Selected dropped.xlsx")
    page.keyboard.press("Enter")
    row = wait_for_status(page, "dropped.xlsx", "COMPLETED")
    expect(row.locator("td[data-label=Progress]")).to_contain_text("0 created · 0 updated · 1 unchanged · 1 failed")


def test_extract_participants_from_the_page_and_download_the_file(page, server, web_setup, api) -> None:
    files = {"file": ("people.csv", "ParticipantID,firstName\r\nEXT-2,=Bea\r\nEXT-1,Ann\r\n", "text/csv")}
    base = f"{P}/clinicaldata/studies/{STUDY}/sites/{SITE_A}/participants"
    assert api.client.post(f"{base}/bulk", files=files, headers=api.headers(COORDINATOR)).status_code == 200
    sign_in(page, server)
    wait_for_status(page, "people.csv", "COMPLETED")
    page.get_by_label("Include access codes").check()
    page.get_by_role("button", name="Extract participants").click()
    expect(page.locator("#extract-message")).to_contain_text(f"Extracting the participants of {SITE_A} as job")
    name = f"participants-{SITE_A}.csv"
    row = wait_for_status(page, name, "COMPLETED")
    expect(row.locator("td[data-label='Source file']")).to_contain_text("extract")
    expect(row.locator("td[data-label='Source file']")).to_contain_text("access codes")
    expect(row.locator("td[data-label=Progress]")).to_contain_text("2 participants extracted")
    # No log to view and no failed rows: the one file is the extract itself.
    expect(row.get_by_role("button", name="View log of")).to_have_count(0)
    expect(row.get_by_role("button", name="Download failed rows")).to_have_count(0)
    file, text = download(page, row.get_by_role("button", name=f"Download {name}"))
    assert file.suggested_filename == name
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:5] == ["ParticipantID", "Participant OID", "Status", "Participate Status", "First Name"]
    assert rows[0][-1] == "Access Code"
    assert [(r[0], r[4]) for r in rows[1:]] == [("EXT-1", "Ann"), ("EXT-2", "'=Bea")]


def test_revert_a_finished_job_after_confirming_what_it_will_do(page, server, web_setup, tmp_path: Path) -> None:
    sign_in(page, server)
    upload(page, write_csv(tmp_path, "to-revert.csv", GOOD_AND_BAD[:3]))
    row = wait_for_status(page, "to-revert.csv", "COMPLETED")
    asked: list[str] = []
    page.once("dialog", lambda d: (asked.append(d.message), d.accept()))
    row.get_by_role("button", name="Revert to-revert.csv").first.click()
    expect(page.locator("#jobs-message")).to_contain_text("Reverting to-revert.csv")
    assert "2 participant(s) it created are deleted" in asked[0] and "changed since the job is left" in asked[0]
    revert = page.locator("#jobs-body tr").filter(has=page.locator(".tag", has_text="revert"))
    expect(revert).to_have_attribute("data-status", "COMPLETED", timeout=30_000)
    expect(revert).to_contain_text("2 deleted")
    expect(revert.get_by_role("button", name="Revert to-revert.csv")).to_have_count(0)


def test_validate_only_runs_a_dry_run_that_changes_nothing_and_cannot_be_reverted(
    page, server, web_setup, api, tmp_path: Path
) -> None:
    sign_in(page, server)
    upload(page, write_csv(tmp_path, "to-check.csv", GOOD_AND_BAD[:3]), dry_run=True)
    row = wait_for_status(page, "to-check.csv", "COMPLETED")
    expect(row.locator("td[data-label='Source file'] .tag")).to_have_text(["dry run"])
    expect(row.locator("td[data-label=Progress]")).to_contain_text("2 of 2 rows · 2 created")
    expect(row.get_by_role("button", name="Revert to-check.csv")).to_have_count(0)
    # The log says what each row would do; a participant it would create has no OID, none having been taken.
    row.get_by_role("button", name="View log of to-check.csv").click()
    expect(log_rows(page)).to_have_count(2)
    assert log_outcomes(page) == ["created", "created"]
    expect(log_rows(page).locator("td[data-label='Participant ID']")).to_have_text(["WEB-001", "WEB-002"])
    expect(log_rows(page).locator("td[data-label='Participant OID']")).to_have_text(["", ""])
    listed = api.client.get(
        f"{P}/clinicaldata/studies/{STUDY}/sites/{SITE_A}/participants", headers=api.headers(COORDINATOR)
    )
    assert listed.status_code == 200, listed.text
    assert listed.json()["total"] == 0
