"""The settings of SPEC §13, checked at start-up like every other."""

from __future__ import annotations

import pytest

from roster.config import ConfigError, Settings, get_settings


def test_log_format_is_text_or_json_in_any_case(monkeypatch):
    assert Settings(_env_file=None).log_format == "text"
    monkeypatch.setenv("ROSTER_LOG_FORMAT", "JSON")
    assert Settings(_env_file=None).log_format == "json"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ROSTER_LOG_FORMAT", "xml"),
        ("ROSTER_UPLOAD_RETENTION_DAYS", "-1"),
        ("ROSTER_JOB_RETENTION_DAYS", "0"),
        ("ROSTER_PURGE_INTERVAL_SECONDS", "0"),
        ("ROSTER_METRICS", "maybe"),
    ],
)
def test_bad_values_stop_start_up_with_one_line_naming_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError, match=variable):
            get_settings()
    finally:
        get_settings.cache_clear()


def test_retention_defaults_keep_jobs_and_delete_uploads_after_30_days(monkeypatch):
    settings = Settings(_env_file=None)
    assert (settings.upload_retention_days, settings.job_retention_days, settings.metrics) == (30, None, True)
    monkeypatch.setenv("ROSTER_JOB_RETENTION_DAYS", "")
    assert Settings(_env_file=None).job_retention_days is None
    monkeypatch.setenv("ROSTER_JOB_RETENTION_DAYS", "365")
    assert Settings(_env_file=None).job_retention_days == 365
