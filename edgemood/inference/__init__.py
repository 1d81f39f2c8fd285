"""Running the int8 TFLite mood model."""
