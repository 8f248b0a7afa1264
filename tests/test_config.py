"""Settings come from the environment; secrets stay secret; API keys are generated safely."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from backend.api.auth import KEY_FILE, load_api_keys
from backend.config import Settings

# field -> (environment value, the value Settings must hold). Every field is listed, and
# every value differs from the default, so a field the environment cannot set fails here.
FROM_ENV: dict[str, tuple[str, Any]] = {
    "database_url": ("postgresql://app:db-pw-1@db.example:5432/x",
                     "postgresql://app:db-pw-1@db.example:5432/x"),
    "data_dir": ("/srv/tml", Path("/srv/tml")),
    "db_prepare_threshold": ("0", 0),
    "db_pool_min_size": ("2", 2),
    "db_pool_max_size": ("16", 16),
    "db_connect_timeout": ("2.5", 2.5),
    "auto_migrate": ("false", False),
    "host": ("0.0.0.0", "0.0.0.0"),
    "port": ("9001", 9001),
    "log_level": ("warning", "warning"),
    "max_body_bytes": ("12345", 12345),
    "max_upload_rows": ("5000", 5000),
    "header_timeout_s": ("2.5", 2.5),
    "body_timeout_s": ("7", 7.0),
    "max_connections": ("300", 300),
    "max_concurrency": ("64", 64),
    "bot_api_keys": ("bot-key-a,bot-key-b", "bot-key-a,bot-key-b"),
    "admin_api_keys": ("admin-key-a", "admin-key-a"),
    "viewer_api_keys": ("viewer-key-a", "viewer-key-a"),
    "model_name": ("eurusd-1h", "eurusd-1h"),
    "decision_threshold": ("0.6", 0.6),
    "decision_costs_r": ("0.05", 0.05),
    "decision_margin_r": ("0.1", 0.1),
    "top_contributions": ("7", 7),
    "compile_models": ("false", False),
    "model_poll_seconds": ("3", 3.0),
    "compiled_model_dir": ("/srv/so", Path("/srv/so")),
    "writer_batch_size": ("50", 50),
    "writer_process": ("false", False),
    "writer_flush_seconds": ("0.5", 0.5),
    "writer_retry_seconds": ("2", 2.0),
    "journal_fsync": ("always", "always"),
    "journal_fsync_ms": ("250", 250.0),
    "bootstrap_on_start": ("false", False),
    "bootstrap_candles": ("/srv/candles.csv", Path("/srv/candles.csv")),
    "bootstrap_symbol": ("GOOG", "GOOG"),
    "bootstrap_timeframe": ("1d", "1d"),
    "bootstrap_trials": ("3", 3),
    "train_trials": ("4", 4),
    "train_timeout_seconds": ("60", 60.0),
    "train_seed": ("7", 7),
    "optuna_storage": ("postgresql://optuna:optuna-pw-2@db.example/x",
                       "postgresql://optuna:optuna-pw-2@db.example/x"),
    "tracker_interval_seconds": ("30", 30.0),
    "fast_path": ("false", False),
    "optuna_study": ("eurusd-shared", "eurusd-shared"),
    "barrier_tp_atr": ("3", 3.0),
    "barrier_sl_atr": ("1.5", 1.5),
    "barrier_horizon": ("2d", "2d"),
    "dataset_workers": ("3", 3),
    "dask_scheduler": ("tcp://dask.example:8786", "tcp://dask.example:8786"),
    "retrain_after_outcomes": ("50", 50),
    "retrain_every_hours": ("12.5", 12.5),
    "retrain_max_psi": ("0.25", 0.25),
    "retrain_with_bootstrap": ("true", True),
    "retrain_trials": ("4", 4),
}
SECRETS = ("database_url", "bot_api_keys", "admin_api_keys", "viewer_api_keys",
           "optuna_storage")


def env_name(field: str) -> str:
    return "DATABASE_URL" if field == "database_url" else f"TML_{field.upper()}"


def plain(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets: no TML_* or DATABASE_URL from the outer environment."""
    for key in list(os.environ):
        if key.startswith("TML_") or key == "DATABASE_URL":
            monkeypatch.delenv(key)


def test_every_field_is_settable_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert set(FROM_ENV) == set(Settings.model_fields)
    for field, (raw, _) in FROM_ENV.items():
        monkeypatch.setenv(env_name(field), raw)
    settings = Settings()
    for field, (_, expected) in FROM_ENV.items():
        default = plain(Settings.model_fields[field].default)
        assert expected != default, field  # else the test could not tell env from default
        assert plain(getattr(settings, field)) == expected, field


def test_derived_paths_follow_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TML_DATA_DIR", "/srv/tml")
    s = Settings()
    assert (s.pg_data_dir, s.journal_dir, s.model_cache_dir) == (
        Path("/srv/tml/pg"), Path("/srv/tml/journal"), Path("/srv/tml/compiled_models"))


def test_prefixed_database_url_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TML_DATABASE_URL", "postgresql://u:p@h/db")
    assert plain(Settings().database_url) == "postgresql://u:p@h/db"


def test_prepare_threshold_none_disables_prepared_statements(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().db_prepare_threshold == 5
    for spelling in ("none", "None", "NULL", ""):
        monkeypatch.setenv("TML_DB_PREPARE_THRESHOLD", spelling)
        assert Settings().db_prepare_threshold is None


@pytest.mark.parametrize(("field", "raw"), [
    ("decision_threshold", "1.5"), ("decision_costs_r", "-1"), ("top_contributions", "0"),
    ("port", "eighty"),
    ("auto_migrate", "perhaps"),
    ("journal_fsync", "sometimes"),
])
def test_a_bad_value_names_the_field(field: str, raw: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env_name(field), raw)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert [e["loc"] for e in info.value.errors()] == [(field,)]


def test_secrets_are_secretstr_and_stay_out_of_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    for field in SECRETS:
        monkeypatch.setenv(env_name(field), FROM_ENV[field][0])
    settings = Settings()
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    for field in SECRETS:
        assert isinstance(getattr(settings, field), SecretStr), field
        assert FROM_ENV[field][0] not in shown, field
    for password in ("db-pw-1", "optuna-pw-2", "bot-key-a", "admin-key-a", "viewer-key-a"):
        assert password not in shown


# ---- API keys ------------------------------------------------------------------------------
def test_keys_are_generated_once_into_a_private_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first = load_api_keys(settings)
    path = tmp_path / "data" / KEY_FILE
    assert first.generated
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert (first.bot, first.admin) == ((stored["bot"].encode(),), (stored["admin"].encode(),))
    assert first.bot[0] != first.admin[0]

    second = load_api_keys(settings)
    assert not second.generated
    assert (second.bot, second.admin) == (first.bot, first.admin)

    bot_key, admin_key = first.bot[0].decode(), first.admin[0].decode()
    assert second.scope_of(bot_key) == "bot"
    assert second.scope_of(admin_key) == "admin"
    for unknown in ("nope", bot_key[:-1], bot_key + "x", "", None):
        assert second.scope_of(unknown) is None, unknown


def test_configured_comma_lists_allow_rotation_and_generate_nothing(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, bot_api_keys=" bot-old , bot-new ,",
                        admin_api_keys="adm-old,adm-new")
    keys = load_api_keys(settings)
    assert not keys.generated
    assert not (tmp_path / KEY_FILE).exists()
    assert [keys.scope_of(k) for k in ("bot-old", "bot-new", "adm-old", "adm-new")] == [
        "bot", "bot", "admin", "admin"]
    assert keys.scope_of(" bot-old ") is None  # surrounding spaces are not part of a key
    assert keys.scope_of("bot-old,bot-new") is None


def test_a_viewer_key_is_generated_with_the_others_and_added_to_an_older_file(
        tmp_path: Path) -> None:
    first = load_api_keys(Settings(data_dir=tmp_path / "new"))
    assert first.generated and len(first.viewer) == 1
    assert first.scope_of(first.viewer[0].decode()) == "viewer"
    assert len({first.bot[0], first.admin[0], first.viewer[0]}) == 3
    # a key file written before the viewer scope: its keys stay, a viewer key is added
    old = tmp_path / "old"
    old.mkdir()
    (old / KEY_FILE).write_text(json.dumps({"bot": "bot-1", "admin": "adm-1"}))
    upgraded = load_api_keys(Settings(data_dir=old))
    assert upgraded.viewer_generated and not upgraded.generated
    assert (upgraded.bot, upgraded.admin) == ((b"bot-1",), (b"adm-1",))
    stored = json.loads((old / KEY_FILE).read_text())
    assert stored["viewer"].encode() == upgraded.viewer[0]
    assert stat.S_IMODE((old / KEY_FILE).stat().st_mode) == 0o600
    again = load_api_keys(Settings(data_dir=old))
    assert not again.viewer_generated and again.viewer == upgraded.viewer


def test_viewer_scope_reads_only() -> None:
    from backend.api.auth import permits

    assert permits("viewer", "viewer", "GET") and permits("viewer", "bot", "GET")
    assert not permits("viewer", "bot", "POST") and not permits("viewer", "admin", "GET")
    assert permits("bot", "bot", "POST") and not permits("bot", "admin", "POST")
    assert all(permits("admin", needed, "POST") for needed in ("viewer", "bot", "admin"))
    keys = load_api_keys(Settings(viewer_api_keys="view-a,view-b"))
    assert [keys.scope_of(k) for k in ("view-a", "view-b", "view-c")] == [
        "viewer", "viewer", None]
