"""The mixin's "tml" config section: the retrain switch and its admin key (env only)."""

from __future__ import annotations

import pytest

from integrations.freqtrade.settings import TMLSettings


def test_retrain_takes_the_admin_key_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("TML_ADMIN_API_KEY", "admin-key")
    s = TMLSettings.from_config({"tml": {"retrain": True, "retrain_timeout": 60}})
    assert s.retrain and s.admin_api_key == "admin-key" and s.retrain_timeout == 60
    assert not TMLSettings.from_config({"tml": {}}).retrain  # off by default


def test_retrain_without_an_admin_key_is_refused(monkeypatch) -> None:
    monkeypatch.delenv("TML_ADMIN_API_KEY", raising=False)
    with pytest.raises(ValueError, match="TML_ADMIN_API_KEY"):
        TMLSettings.from_config({"tml": {"retrain": True}})


def test_the_admin_key_never_comes_from_the_config(monkeypatch) -> None:
    monkeypatch.setenv("TML_ADMIN_API_KEY", "admin-key")
    with pytest.raises(ValueError, match="set the env TML_ADMIN_API_KEY"):
        TMLSettings.from_config({"tml": {"admin_api_key": "in-the-config"}})
