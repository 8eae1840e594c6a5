"""The ``retention`` settings (issue 15, item 13): documented keys, precise errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ratelord.daemon.config import load_settings
from ratelord.daemon.retention import archive_directory
from tests.unit.test_config_errors import error_of


def settings_of(tmp_path: Path, text: str, *argv: str):
    path = tmp_path / "ratelord.yaml"
    path.write_text(text)
    return load_settings(["--config", str(path), *argv], {})[0]


def test_retention_reads_durations_and_defaults_the_directory_beside_the_log(tmp_path: Path):
    settings = settings_of(tmp_path, "retention: {archive_after: 7d}\n", "--db", "/data/r.db")
    assert settings.retention is not None
    assert settings.retention.archive_after_seconds == 7 * 86400
    assert settings.retention.every_seconds == 3600
    assert archive_directory(settings) == Path("/data/r.db.archive")
    other = settings_of(tmp_path, "retention: {archive_after: 12h, dir: /srv/a, every: null}\n")
    assert other.retention is not None and other.retention.every_seconds is None
    assert archive_directory(other) == Path("/srv/a")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "retention: {archive_after: 7x}\n",
            "key 'retention.archive_after': '7x' is not a duration",
        ),
        (
            "retention: {archive_after: 7d, every: 10s}\n",
            "key 'retention.every': '10s' is too short",
        ),
        ("retention: {}\n", "key 'retention': Object missing required field `archive_after`"),
        ("retention: {archive_after: 7d, segment_events: 5}\n", "retention.segment_events"),
        ("retention: {archive_afer: 7d}\n", "did you mean 'archive_after'?"),
        (
            "store: {url: 'postgresql://u@h/db'}\nretention: {archive_after: 7d}\n",
            "key 'retention.dir': a PostgreSQL log needs an archive directory",
        ),
    ],
)
def test_a_bad_retention_setting_names_the_key_and_the_fix(
    tmp_path: Path, text: str, expected: str
):
    assert expected in error_of(tmp_path, text)
