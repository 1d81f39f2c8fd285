"""The room's mood: how the faces of one frame become that frame's evidence.

This module weighs faces within a frame; the debouncer (``edgemood.mood.debounce``)
weighs frames over time, and validates probabilities the same way for both.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgemood.mood.debounce import normalised


def room_probabilities(probabilities: Sequence[np.ndarray], areas: Sequence[float]) -> np.ndarray | None:
    """The room's evidence from every face in a frame: a mean of their probabilities weighted by face area.

    With ``[detect] multiple_faces = "all"`` the debouncer is fed this instead
    of one face's probabilities, and smooths it like any other frame. Area, not
    the classifier's confidence, is the weight: a bigger face is nearer the
    camera and the speakers and its crop has more pixels, so it is read more
    reliably; weighting by confidence would let one overconfident misreading
    outvote the room. Each face's probabilities are normalised first, so every
    face counts by its area alone. No faces: None (nobody is seen). Faces of
    zero area (which a detector does not report) would count equally.
    """
    if len(probabilities) != len(areas):
        raise ValueError(f"{len(probabilities)} probability vectors but {len(areas)} areas")
    if not probabilities:
        return None
    faces = np.stack([normalised(p) for p in probabilities])
    weights = np.asarray(areas, dtype=np.float64)
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(f"face areas must be non-negative numbers, got {list(areas)!r}")
    if weights.sum() <= 0:
        weights = np.ones(len(faces))
    return weights @ faces / weights.sum()
