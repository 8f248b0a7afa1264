"""Answering /predict and /predict/batch, shared by the FastAPI routes and the fast path
(``backend.api.fast_path``): the stored answer for a known trade_id, or score, journal,
remember and count."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from backend.api.answers import AnswerCache, scored_answer
from backend.api.errors import BadRequest, PayloadConflict, ServiceUnavailable
from backend.api.metrics import Metrics
from backend.api.responses import render_json
from backend.api.schemas.predict import PredictBatchRequest, PredictRequest
from backend.db.write_behind import WriteBehind
from backend.ml.candles_json import candles_to_arrays
from backend.ml.ml_system import MLSystem
from backend.ml.scoring import Scored, Signal, make_signal


@dataclass(frozen=True, slots=True)
class Predictions:
    system: MLSystem
    writer: WriteBehind
    answers: AnswerCache
    metrics: Metrics

    def answer(self, req: PredictRequest) -> bytes:
        """Score one signal (or return the stored answer for a known trade_id sent with
        the same payload; 409 with another) and journal it; the answer as JSON."""
        signal = self._signal(req, prefix="")
        stored = self._remembered(signal)
        if stored is not None:
            return render_json({**stored, "duplicate": True})
        return self._accept(self._score([signal], explain=req.explain)[0])

    def answer_batch(self, req: PredictBatchRequest) -> dict[str, Any]:
        """Many signals, answered in the same order (the body of PredictBatchResponse)."""
        seen: set[str] = set()
        for i, item in enumerate(req.signals):
            if item.trade_id in seen:
                raise BadRequest(f"signals[{i}].trade_id", "duplicate trade_id within the batch")
            seen.add(item.trade_id)
        every = [self._signal(s, prefix=f"signals[{i}].") for i, s in enumerate(req.signals)]
        answers: list[Any] = [self._remembered(s) for s in every]
        todo = [i for i, a in enumerate(answers) if a is None]
        signals = [every[i] for i in todo]
        if signals:
            explain = any(req.signals[i].explain for i in todo)
            for i, scored in zip(todo, self._score(signals, explain=explain), strict=True):
                if not req.signals[i].explain:
                    scored.contributions = None
                answers[i] = orjson.Fragment(self._accept(scored))
        data = [a if i in todo else {**a, "duplicate": True}
                for i, a in enumerate(answers) if a is not None]
        return {"data": data, "count": len(data)}

    def _signal(self, req: PredictRequest, *, prefix: str) -> Signal:
        return make_signal(
            candles_to_arrays(req.candles, field=f"{prefix}candles"), trade_id=req.trade_id,
            symbol=req.symbol, timeframe=req.timeframe, side=req.side, strategy=req.strategy,
            signal_time=req.signal_time, min_candles=self.system.extractor.min_candles,
            signal_strength=req.signal_strength, stop_price=req.stop_price,
            target_price=req.target_price, prefix=prefix)

    def _remembered(self, signal: Signal) -> dict[str, Any] | None:
        """The stored answer of this trade_id, if the same request was answered; raises
        PayloadConflict if it was asked with another (a stale answer is worse than none)."""
        stored = self.answers.remembered(signal.trade_id)
        if stored is None:
            return None
        if stored.digest and stored.digest != signal.digest:
            pid = stored.answer["prediction_id"]
            raise PayloadConflict(
                f"{signal.prefix}trade_id {signal.trade_id!r} was already scored with another "
                f"payload (prediction {pid}); send the same payload to get that answer "
                f"back, or use a new trade_id", trade_id=signal.trade_id, prediction_id=pid)
        return stored.answer

    def _score(self, signals: list[Signal], *, explain: bool) -> list[Scored]:
        try:
            return self.system.score(signals, explain=explain)
        except LookupError as exc:
            raise ServiceUnavailable(str(exc)) from None

    def _accept(self, scored: Scored) -> bytes:
        """Journal the feature row and prediction, then remember and count the answer."""
        try:
            self.writer.submit(scored.journal_entry())
        except OSError as exc:  # journal not writable: not accepted, nothing promised
            raise ServiceUnavailable(f"cannot journal the prediction: {exc}") from None
        self.metrics.count_prediction(scored.decision)
        return self.answers.remember(scored.signal.trade_id, scored_answer(scored),
                                     scored.signal.digest)
