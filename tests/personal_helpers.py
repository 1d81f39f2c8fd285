"""The personal-head tests' shared parts: a model identity, a fixed enrollment time, a head that always says one mood.

Test modules import what they use from here (``from personal_helpers import synthetic_head``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from edgemood.classes import CLASSES
from edgemood.mood.head import ModelIdentity, PersonalHead, Softmax

#: Embedding size of the synthetic model: small, so fitting in the tests is quick.
E = 64
MODEL = ModelIdentity("model.tflite", "ab" * 32, E)
WHEN = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def synthetic_head(created: datetime = WHEN, model: ModelIdentity = MODEL, favourite: str = "surprise") -> PersonalHead:
    """A head over all classes that always says ``favourite``."""
    size = model.embedding_size
    bias = np.zeros(len(CLASSES))
    bias[CLASSES.index(favourite)] = 20.0
    classifier = Softmax(np.zeros((size, len(CLASSES))), bias, np.zeros(size), np.ones(size))
    return PersonalHead(classifier, CLASSES, 1.0, model, created, {"base_accuracy": 0.25, "personal_accuracy": 0.75})
