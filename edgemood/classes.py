"""The mood vocabulary shared by the model, the debouncer and every sink."""

from typing import Final

#: Model output order; the sidecar JSON of every shipped model repeats it.
CLASSES: Final[tuple[str, ...]] = (
    "anger",
    "contempt",
    "disgust",
    "fear",
    "happy",
    "neutral",
    "sad",
    "surprise",
)
#: No face for a while.
ABSENT: Final = "absent"
#: A face is seen but no class is confident enough yet. Not ``unknown``: Home
#: Assistant uses that word for "no data", and this state is data.
UNCERTAIN: Final = "uncertain"
#: Every value the published mood can take.
MOODS: Final[tuple[str, ...]] = CLASSES + (ABSENT, UNCERTAIN)
