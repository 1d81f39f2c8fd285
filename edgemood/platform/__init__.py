"""Small helpers the pipeline stands on: systemd, logging, clocks, waking the loop, stats."""
