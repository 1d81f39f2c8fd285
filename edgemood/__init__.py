"""edgemood: plays music to fit the mood on the face in front of the camera."""

import os

__version__ = "0.1.0"

#: Images declaring more pixels are refused from their header, before decoding.
#: OpenCV reads this setting once, when it is loaded, hence here, before any
#: module imports cv2 (its default, 2**30, lets an 875 KB PNG claim 1.8 GB).
MAX_IMAGE_PIXELS = 8192 * 8192
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_IMAGE_PIXELS))
