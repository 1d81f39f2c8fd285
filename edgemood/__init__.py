"""edgemood: plays music to fit the mood on the face in front of the camera."""

__version__ = "0.1.0"
