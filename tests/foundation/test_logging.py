"""What reaches the server log: no personal data. Request paths hold participant IDs and usernames, and an
exception's text can quote row values, so the log names route templates and exception types only."""

from __future__ import annotations

import logging

import pytest
from fastapi.responses import StreamingResponse

from roster import codes
from roster.errors import UNMATCHED_ROUTE
from tests.support import P

PERSONAL = "row 7: Ada Lovelace ada@example.org"


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def roster_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The server's own lines (the test client's httpx logs the URL it requested, as any client may)."""
    return [r for r in caplog.records if r.name.startswith("roster")]


def roster_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in roster_lines(caplog))


def assert_no_personal_data_or_traceback(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    out, err = capfd.readouterr()
    everything = caplog.text + out + err
    assert "Ada" not in everything and "ada@" not in everything, everything
    assert "Traceback" not in everything, everything
    assert all(r.exc_info is None and r.exc_text is None for r in caplog.records)


def test_an_unhandled_exception_answers_500_and_logs_one_line_naming_its_type_only(app, client, logs, capfd):
    def fail() -> None:
        raise ValueError(PERSONAL)

    app.add_api_route("/test-only/fail", fail)
    # The test client re-raises whatever escapes the app, as uvicorn would print it with its traceback.
    r = client.get("/test-only/fail")
    assert r.status_code == 500
    assert r.json() == {
        "message": codes.INTERNAL_ERROR,
        "params": {},
        "detail": codes.message_for(codes.INTERNAL_ERROR),
    }
    lines = roster_lines(logs)
    assert [(line.levelno, line.getMessage().split()[:3]) for line in lines] == [
        (logging.ERROR, ["GET", "/test-only/fail", "500"])
    ]
    assert lines[0].getMessage().endswith("unhandled ValueError")
    assert_no_personal_data_or_traceback(logs, capfd)


def test_an_exception_while_streaming_an_answer_is_logged_by_type_only(app, client, logs, capfd):
    def rows():
        yield b"Row,ParticipantID\r\n"
        raise ValueError(PERSONAL)

    app.add_api_route("/test-only/stream", lambda: StreamingResponse(rows(), media_type="text/csv"))
    r = client.get("/test-only/stream")
    assert (
        r.status_code == 200 and r.content == b"Row,ParticipantID\r\n"
    )  # cut short: a server would break the connection
    lines = roster_lines(logs)
    assert len(lines) == 1 and lines[0].levelno == logging.ERROR
    assert lines[0].getMessage().endswith("unhandled ValueError after the answer started")
    assert_no_personal_data_or_traceback(logs, capfd)


def test_the_access_log_names_the_route_template_not_the_path(client, api, logs):
    api.user("ada.lovelace")
    logs.clear()
    api.ok(client.get(f"{P}/admin/users/ada.lovelace/roles?x=Ada", headers=api.admin))
    assert [line.getMessage().split()[:3] for line in roster_lines(logs)] == [
        ["GET", f"{P}/admin/users/{{username}}/roles", "200"]
    ]
    assert "ada" not in roster_text(logs).lower()


def test_an_unmatched_path_is_logged_as_a_placeholder(client, logs):
    assert client.get(f"{P}/no-such/ada.lovelace").status_code == 404
    assert [line.getMessage().split()[:3] for line in roster_lines(logs)] == [["GET", UNMATCHED_ROUTE, "404"]]
    assert "ada" not in roster_text(logs).lower()
