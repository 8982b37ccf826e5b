"""Browser tests may skip on a developer's machine without Chromium, but never under CI."""

from __future__ import annotations

import pytest

from tests.web import conftest


def test_a_missing_browser_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        conftest._unavailable("Chromium is not installed")


def test_a_missing_browser_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        conftest._unavailable("Chromium is not installed")
