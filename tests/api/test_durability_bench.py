"""bench/durability.py's scenarios, short (issue 12): kill -9 of the writer process and a
full journal disk against the real service; nothing accepted lost or doubled, nothing
answered 503 stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.durability import Run

pytestmark = [pytest.mark.slow, pytest.mark.server]


@pytest.mark.parametrize("scenario", ["kill_writer", "disk_full"])
def test_a_short_durability_run_loses_and_doubles_nothing(
        api_db_url: str, tmp_path: Path, scenario: str) -> None:
    run = Run(tmp_path, requests=120, threads=2, db_url=api_db_url)
    got = run.scenario(scenario)
    if isinstance(got, str):
        pytest.skip(got)  # disk_full: no tmpfs without root and mount
    assert got["sent"] == 120 and got["no answer"] == 0
    assert got["lost"] == 0 and got["duplicated"] == 0 and got["503'd but stored"] == 0
    assert got["stored"] == got["accepted"] > 0
    if scenario == "disk_full":
        assert got["503"] > 0  # the disk really was full for a while
        assert run.ready_while_full == "degraded"  # writer.healthy false: not "ready"
    else:
        assert got["accepted"] == 120
