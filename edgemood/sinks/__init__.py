"""Where mood changes go: MPD and MQTT."""
