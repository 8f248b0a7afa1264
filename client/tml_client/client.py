"""Synchronous client: one keep-alive connection pool with TCP_NODELAY, timeouts, retries.

Every write the client sends is idempotent on the service (a known ``trade_id`` returns the
stored answer), so a request is retried with the same body when the connection fails or
the service answers 502/503/504: at worst the retry returns ``duplicate``/``created: false``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from tml_client.errors import ServiceError, ServiceUnavailable, ValidationFailed
from tml_client.types import ExitAdvice, ExitRecord, FieldError, Prediction, Retrain

# Candles: {"time": [...], "open": [...], ...} or [{"time": ..., "open": ...}, ...]
CandlesLike = Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]
_RETRY_STATUS = frozenset({502, 503, 504})
# Without TCP_NODELAY a small request waits on Nagle + delayed ACK (~40 ms a call).
_SOCKET_OPTIONS = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def _iso(value: datetime | str | float | int) -> str | float | int:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return value


def _drop_none(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


class TMLClient:
    """Client of the trading-ML service.

    Parameters
    ----------
    base_url : str
        e.g. ``http://127.0.0.1:8000`` (the ``/api/v1`` prefix is added).
    api_key : str
        A ``bot`` key (``X-API-Key``).
    timeout : float
        Seconds to wait for an answer (per attempt); ``connect_timeout`` for the connect.
    retries : int
        Extra attempts after a connection error, a timeout or a 502/503/504.
    backoff : float
        Seconds before the first retry, doubled each time.
    """

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 5.0,
                 connect_timeout: float = 2.0, retries: int = 2, backoff: float = 0.1,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.retries = retries
        self.backoff = backoff
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1",
            headers={"X-API-Key": api_key},
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            transport=transport or httpx.HTTPTransport(
                socket_options=_SOCKET_OPTIONS,
                limits=httpx.Limits(max_keepalive_connections=4, keepalive_expiry=60)),
        )

    def __enter__(self) -> TMLClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- endpoints ---------------------------------------------------------------------

    def predict(self, *, trade_id: str, symbol: str, timeframe: str, side: str,
                candles: CandlesLike, strategy: str | None = None,
                signal_time: datetime | str | float | None = None,
                signal_strength: float | None = None, stop_price: float | None = None,
                target_price: float | None = None, explain: bool = False) -> Prediction:
        """Score one signal: ``POST /predict``."""
        body = self.predict_body(trade_id=trade_id, symbol=symbol, timeframe=timeframe,
                                 side=side, candles=candles, strategy=strategy,
                                 signal_time=signal_time, signal_strength=signal_strength,
                                 stop_price=stop_price, target_price=target_price,
                                 explain=explain)
        return Prediction.from_json(self._post("/predict", body))

    def predict_batch(self, signals: Iterable[Mapping[str, Any]]) -> list[Prediction]:
        """Score up to 500 signals (each the keyword arguments of :meth:`predict`), in order."""
        body = {"signals": [self.predict_body(**s) for s in signals]}
        return [Prediction.from_json(p) for p in self._post("/predict/batch", body)["data"]]

    def evaluate_exit(self, *, trade_id: str, symbol: str, side: str,
                      entry_time: datetime | str, entry_price: float, quantity: float,
                      initial_stop: float, candles: CandlesLike, target: float | None = None,
                      current_stop: float | None = None, policy: str | None = None,
                      params: Mapping[str, Any] | None = None) -> ExitAdvice:
        """Advice for an open position: ``POST /exits/evaluate``."""
        body = _drop_none({
            "trade_id": trade_id, "symbol": symbol, "side": side,
            "entry_time": _iso(entry_time), "entry_price": entry_price, "quantity": quantity,
            "initial_stop": initial_stop, "target": target, "current_stop": current_stop,
            "policy": policy, "params": dict(params) if params is not None else None,
            "candles": _candles(candles)})
        return ExitAdvice.from_json(self._post("/exits/evaluate", body))

    def record_exit(self, *, trade_id: str, symbol: str, side: str,
                    entry_time: datetime | str, exit_time: datetime | str,
                    entry_price: float, exit_price: float, quantity: float,
                    exit_reason: str, initial_stop: float | None = None,
                    pnl: float | None = None, fees: float | None = None,
                    mfe: float | None = None, mae: float | None = None,
                    policy_name: str | None = None,
                    policy_params: Mapping[str, Any] | None = None) -> ExitRecord:
        """Report a closed position: ``POST /exits`` (labels the signal, resolves it)."""
        body = _drop_none({
            "trade_id": trade_id, "symbol": symbol, "side": side,
            "entry_time": _iso(entry_time), "exit_time": _iso(exit_time),
            "entry_price": entry_price, "exit_price": exit_price, "quantity": quantity,
            "exit_reason": exit_reason, "initial_stop": initial_stop, "pnl": pnl,
            "fees": fees, "mfe": mfe, "mae": mae, "policy_name": policy_name,
            "policy_params": dict(policy_params) if policy_params is not None else None})
        return ExitRecord.from_json(self._post("/exits", body))

    @staticmethod
    def predict_body(*, trade_id: str, symbol: str, timeframe: str, side: str,
                     candles: CandlesLike, strategy: str | None = None,
                     signal_time: datetime | str | float | None = None,
                     signal_strength: float | None = None, stop_price: float | None = None,
                     target_price: float | None = None, explain: bool = False
                     ) -> dict[str, Any]:
        """The JSON body of one ``/predict`` signal."""
        return _drop_none({
            "trade_id": trade_id, "symbol": symbol, "timeframe": timeframe, "side": side,
            "strategy": strategy,
            "signal_time": _iso(signal_time) if signal_time is not None else None,
            "signal_strength": signal_strength, "stop_price": stop_price,
            "target_price": target_price, "explain": explain or None,
            "candles": _candles(candles)})

    def retrain(self, *, admin_key: str, force: bool = False, wait: bool = True,
                timeout: float = 1800.0) -> Retrain:
        """``POST /models/retrain`` with an ``admin`` key: retrain if the service's policy
        says so (or ``force``); with ``wait``, answers when the retrain is done."""
        data = self._post("/models/retrain", {"force": force, "wait": wait, "timeout": timeout},
                          headers={"X-API-Key": admin_key},
                          timeout=httpx.Timeout(timeout + 30.0, connect=5.0))
        return Retrain.from_json(data)

    # -- transport ---------------------------------------------------------------------

    def _post(self, path: str, body: dict[str, Any], *, headers: dict[str, str] | None = None,
              timeout: httpx.Timeout | None = None) -> Any:
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._http.post(path, json=body, headers=headers,
                                           **({"timeout": timeout} if timeout else {}))
            except httpx.TransportError as exc:  # refused, reset, timeout: same body again
                last = exc
                continue
            if response.status_code in _RETRY_STATUS:
                last = ServiceError(response.status_code, _detail(response))
                continue
            return _result(response)
        raise ServiceUnavailable(f"POST {path}: no answer after {self.retries + 1} "
                                 f"attempt(s): {last!r}") from last


def _candles(candles: CandlesLike) -> Any:
    """Columns or rows as the service takes them; datetimes become ISO strings."""
    if isinstance(candles, Mapping):
        out = {k: list(v) for k, v in candles.items()}
        if out.get("time") and isinstance(out["time"][0], datetime):
            out["time"] = [_iso(t) for t in out["time"]]
        return out
    return [{**row, "time": _iso(row["time"])} for row in candles]


def _field(loc: Sequence[Any]) -> str:
    """``["body", "candles", "7", "high"]`` -> ``candles.7.high``."""
    parts = [str(p) for p in loc]
    return ".".join(parts[1:] if parts[:1] == ["body"] and len(parts) > 1 else parts)


def _detail(response: httpx.Response) -> Any:
    try:
        return response.json().get("detail")
    except (ValueError, AttributeError):
        return response.text[:500]


def _result(response: httpx.Response) -> Any:
    if response.status_code < 400:
        return response.json()
    detail = _detail(response)
    if response.status_code == 422 and isinstance(detail, list):
        errors = [FieldError(field=_field(e.get("loc", ())),
                             reason=str(e.get("msg", "")), type=str(e.get("type", "")),
                             loc=tuple(e.get("loc", ())))
                  for e in detail if isinstance(e, dict)]
        raise ValidationFailed(response.status_code, detail, errors)
    raise ServiceError(response.status_code, detail)
