"""Soft targets from a teacher model, for distillation.

The teacher is any ``.tflite`` mood model with a sidecar (the shipped file
included): `edgemood train` runs it once over the training images as they are, through the
runtime the daemon uses, and its probabilities are mixed with the crowd's
vote distributions. The teacher's view of an image carries what the votes
cannot (how much a neutral face leans sad), at no cost per epoch.
"""

from __future__ import annotations

import numpy as np


def mix_targets(votes: np.ndarray, teacher: np.ndarray, teacher_weight: float) -> np.ndarray:
    """``teacher_weight`` of the teacher's distribution, the rest the votes'; rows sum to 1."""
    if not 0.0 <= teacher_weight <= 1.0:
        raise ValueError(f"teacher weight {teacher_weight} is outside 0..1")
    mixed = (1.0 - teacher_weight) * votes + teacher_weight * teacher
    return (mixed / mixed.sum(1, keepdims=True)).astype(np.float32)
