"""Model families: what differs between kinds of model, behind one protocol (see base.py), and their registry.

Adding a family is one module implementing `Family` plus one `register(...)` line here.
"""
from .base import (
           REGISTRY,
           SPLITS,
           Family,
           LayerGroup,
           Metric,
           Score,
           Scorer,
           Tuning,
           UnitGroup,
           family_of,
           get,
           register,
           unsupported,
)
from .classifier import ACCURACY, Classifier
from .encoder import COSINE, SentenceEncoder

register(SentenceEncoder())
register(Classifier())

__all__ = ["SPLITS", "Family", "LayerGroup", "Metric", "Score", "Scorer", "Tuning", "UnitGroup", "family_of", "get",
           "register", "unsupported", "REGISTRY", "ACCURACY", "COSINE", "Classifier", "SentenceEncoder"]
