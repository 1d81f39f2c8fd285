"""What only ``edgemood demo`` and the tests use: throw-away local servers, replayed
frames and the shipped photos. Nothing in the pipeline imports it."""
