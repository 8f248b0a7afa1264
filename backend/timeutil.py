"""UTC helpers shared by the schemas, training and serving (one definition of each)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd


def as_utc(value: datetime) -> datetime:
    """``value`` with a time zone: a naive datetime is taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def utc_datetime(value: np.datetime64) -> datetime:
    """An aware UTC datetime from a naive numpy datetime64 that holds UTC."""
    return pd.Timestamp(value).tz_localize(UTC).to_pydatetime()
