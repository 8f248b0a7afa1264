"""The /predict body is PredictResponse, and a trade_id's first answer is the one kept."""

from __future__ import annotations

import uuid

import orjson

from backend.api.answers import AnswerCache, answer
from backend.api.schemas.predict import PredictResponse


def _answer(trade_id: str = "t-1", probability: float = 0.61) -> dict:
    return answer(prediction_id=uuid.uuid4(), trade_id=trade_id, probability=probability,
                  decision="take", threshold=0.5, rule="expected_value", expected_r=0.23,
                  model={"id": 3, "name": "default",
                                                         "version": 2},
                  feature_set_version="fs1", contributions={"rsi_14": 0.02})


def test_the_answer_is_the_schema_in_its_order():
    body = _answer()
    assert list(body) == list(PredictResponse.model_fields)
    parsed = PredictResponse.model_validate_json(orjson.dumps(body), strict=True)
    assert parsed.model_dump(mode="json") == body


def _no_database():
    raise AssertionError("not used here")


def test_the_first_answer_per_trade_id_is_kept_and_returned_as_json():
    cache = AnswerCache(connect=_no_database, current_model=lambda: None)
    first = _answer(probability=0.61)
    assert cache.remembered("t-1") is None
    assert orjson.loads(cache.remember("t-1", first)) == first
    assert orjson.loads(cache.remember("t-1", _answer(probability=0.1))) == first
    assert cache.remembered("t-1").answer == first
    assert cache.remembered("t-1").digest == b""  # unknown: an answer from before digests


def test_the_request_digest_is_kept_with_the_answer():
    cache = AnswerCache(connect=_no_database, current_model=lambda: None)
    digest = bytes(range(32))
    first = _answer("t-2")
    cache.remember("t-2", first, digest)
    cache.remember("t-2", _answer("t-2", probability=0.1), bytes(32))  # the first stays
    assert cache.remembered("t-2") == (digest, first)
