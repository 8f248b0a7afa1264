"""Defects the schema fuzzer (test_schema_fuzz.py) found, kept as plain regression tests."""

from __future__ import annotations

from tests.utils.service import Service

EXIT = {"trade_id": "fuzz-1", "symbol": "EURUSD", "side": "long",
        "entry_time": "2024-01-01T09:00:00Z", "exit_time": "2024-01-01T14:00:00Z",
        "entry_price": 1.1, "exit_price": 1.104, "quantity": 10000, "exit_reason": "manual"}


def test_policy_params_json_cannot_store_is_a_422_naming_the_field(service: Service) -> None:
    """An integer beyond 64 bits in policy_params made the jsonb INSERT raise TypeError
    (orjson: "Integer exceeds 64-bit range"): a 500."""
    with service.client() as client:
        answer = client.post("/api/v1/exits", json={**EXIT, "policy_params": {"k": 2**70}})
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"][0]["loc"] == ["body", "policy_params"]
        # nothing was stored: the same trade reported correctly is created now
        stored = client.post("/api/v1/exits", json={**EXIT, "policy_params": {"k": 2**60}})
    assert stored.status_code == 201, stored.text
    assert stored.json()["policy_params"] == {"k": 2**60}
