"""Frame sources: where frames come from (``devices``), how a failing or stalled one is
survived (``resilient``), and the ``[camera] source`` string (``spec``, pure: the config
checks it without importing OpenCV, which is why this package imports nothing itself)."""
