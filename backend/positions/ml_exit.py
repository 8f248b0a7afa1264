"""The ml_exit policy's probability provider: the active model's opinion of an open trade."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backend.ml.candles import Candles
from backend.positions.params import ProbabilityProvider
from backend.positions.state import PositionState

if TYPE_CHECKING:
    from backend.ml.feature_extractor import FeatureExtractor
    from backend.ml.predictor import Predictor


def model_probability(predictor: Predictor, extractor: FeatureExtractor) -> ProbabilityProvider:
    """The probability, by the model active when it is called, that the open position still
    pays; 1.0 (no opinion, never forces an exit) without a model or enough candles."""

    def probability(state: PositionState, candles: Candles) -> float:
        model = predictor.current
        if model is None or len(candles) < extractor.min_candles:
            return 1.0
        x = extractor.signal_vector(candles, side=state.side, strategy="other")
        return model.predict_one(x)

    return probability
