"""From per-face probabilities to the published mood: debouncing, the room's mood, and
the user's personal head (fitting, storing, applying, enrolling)."""
