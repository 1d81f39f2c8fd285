"""The personal head the daemon uses, if any, and the sentence that says why.

Loading never fails the daemon: a missing, broken or foreign head (fitted on
another model) means the base model alone, with a note for the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np

from edgemood.mood.head import ModelIdentity, PersonalHead, PersonalHeadError
from edgemood.mood.store import HeadStore, default_state_dir


@dataclass(frozen=True)
class ActiveHead:
    """What the daemon uses: a head or none, and the sentence that says which and why."""

    head: PersonalHead | None
    note: str
    problem: bool = False

    def apply(self, probabilities: np.ndarray, embedding: np.ndarray) -> np.ndarray:
        """The blended probabilities, or the base ones unchanged without a head."""
        return probabilities if self.head is None else self.head.apply(probabilities, embedding)

    def health(self) -> dict[str, Any]:
        """For the MQTT stats message."""
        if self.head is None:
            return {"active": False, "note": self.note}
        metrics = self.head.metrics
        return {
            "active": True,
            "enrolled": self.head.created.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "moods": list(self.head.classes),
            "blend": self.head.blend,
            "heldout_accuracy": {"base": metrics.get("base_accuracy"), "personal": metrics.get("personal_accuracy")},
        }


def load_active_head(enabled: bool, model: ModelIdentity, state_dir: Path | None = None) -> ActiveHead:
    """The head to use for ``model``; never raises: a broken or foreign head is a note."""
    if not enabled:
        return ActiveHead(None, "no personal head ([model] personal = false)")
    store = HeadStore(state_dir or default_state_dir())
    try:
        head = store.current()
        if head is None:
            return ActiveHead(None, f"no personal head (none enrolled in {store.folder})")
        head.check_model(model)
    except PersonalHeadError as exc:
        return ActiveHead(None, f"no personal head: {exc}", problem=True)
    accuracy_note = ""
    if "base_accuracy" in head.metrics and "personal_accuracy" in head.metrics:
        accuracy_note = (
            f", held-out accuracy {head.metrics['base_accuracy']:.0%} -> {head.metrics['personal_accuracy']:.0%}"
        )
    return ActiveHead(head, f"personal head from {head.when} in use (moods {', '.join(head.classes)}{accuracy_note})")
