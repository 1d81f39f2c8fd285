"""Sub-commands of the ``edgemood`` command line, one module each."""
