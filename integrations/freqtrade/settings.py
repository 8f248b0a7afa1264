"""The ``"tml"`` section of a freqtrade config, with environment overrides for secrets."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any, Literal

EntryMode = Literal["follow", "observe", "off"]


@dataclass(frozen=True)
class TMLSettings:
    """How the mixin uses the service.

    ``entry``: ``follow`` asks /predict and follows ``decision``; ``observe`` asks and
    reports but takes every entry (the base strategy, with the service's judgement on
    record); ``off`` never asks. ``exit_advice``: custom_stoploss/custom_exit follow
    /exits/evaluate. ``report_exits``: closed trades go to /exits (the labels the service
    learns from). ``fail_open``: take entries while the service cannot answer (default:
    refuse them). ``trade_id_prefix`` keeps runs that must not share ids apart (one per
    variant of the loop report). ``retrain``: after each exit reported, ask the service to
    retrain if its policy says so (``POST /models/retrain`` with ``wait``, the admin key from
    the env ``TML_ADMIN_API_KEY``): the bot waits, so a backtest with continual learning
    reproduces; a live bot leaves it off and lets the service's own check run.
    """

    url: str = "http://127.0.0.1:8000"
    api_key: str = ""
    entry: EntryMode = "follow"
    exit_advice: bool = False
    report_exits: bool = True
    fail_open: bool = False
    timeout: float = 5.0
    connect_timeout: float = 2.0
    retries: int = 2
    backoff: float = 0.1
    candles: int = 100  # sent with /predict: the service's feature window
    policy: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    trade_id_prefix: str = "ft"
    symbols: dict[str, str] = field(default_factory=dict)  # pair -> service symbol
    decision_log: str | None = None  # JSONL of every entry asked and exit reported
    retrain: bool = False
    retrain_timeout: float = 1800.0
    admin_api_key: str = ""  # from TML_ADMIN_API_KEY only (never the config file)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TMLSettings:
        raw = dict(config.get("tml") or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown key(s) in config 'tml': {', '.join(unknown)}")
        raw.setdefault("url", os.environ.get("TML_URL", cls.url))
        raw["api_key"] = os.environ.get("TML_API_KEY") or raw.get("api_key", "")
        if "admin_api_key" in raw:
            raise ValueError("config 'tml.admin_api_key': set the env TML_ADMIN_API_KEY")
        raw["admin_api_key"] = os.environ.get("TML_ADMIN_API_KEY", "")
        if raw.get("retrain") and not raw["admin_api_key"]:
            raise ValueError("config 'tml.retrain' needs the env TML_ADMIN_API_KEY")
        if raw.get("entry", "follow") not in ("follow", "observe", "off"):
            raise ValueError("config 'tml.entry' must be follow, observe or off")
        return cls(**raw)

    @property
    def enabled(self) -> bool:
        return self.entry != "off" or self.exit_advice or self.report_exits
