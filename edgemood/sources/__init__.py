"""Frame sources: where frames come from (``devices``) and how a failing or stalled one is
survived (``resilient``). The ``[camera] source`` string itself is parsed by the pure
``edgemood.config.source_spec``, so checking a config never imports OpenCV; this package
imports nothing itself."""
