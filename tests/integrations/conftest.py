"""freqtrade fixtures: its own virtualenv (``make freqtrade-venv``), the EURUSD sample in
freqtrade's data format, and the API tests' bootstrap model database."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backend.ml.candles import sample_candles_path
from integrations.freqtrade.convert import convert
from tests.api.conftest import api_db_url, bootstrap_run  # noqa: F401 - shared fixtures
from tests.utils.service import REPO


@pytest.fixture(scope="session")
def freqtrade_python() -> Path:
    path = Path(os.environ.get("TML_FREQTRADE_PYTHON", REPO / ".venv-freqtrade/bin/python"))
    if not path.is_file():
        pytest.fail(f"no freqtrade virtualenv at {path}: build it with `make freqtrade-venv` "
                    "(or point TML_FREQTRADE_PYTHON at a Python with freqtrade and tml-client)")
    return path


@pytest.fixture(scope="session")
def ft_datadir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    datadir = tmp_path_factory.mktemp("ft-data")
    convert(sample_candles_path("EURUSD"), pair="EUR/USD", timeframe="1h", datadir=datadir)
    return datadir
