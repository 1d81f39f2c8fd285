"""From a camera frame to aligned face crops: Haar detection, CLAHE, eye alignment."""
