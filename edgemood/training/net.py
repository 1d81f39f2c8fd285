"""The mood CNN: small, early-downsampling, depthwise-separable.

Budget: a few tens of M MACs at 48x48 so it trains on two CPU cores within a
session and runs in a few ms on a Pi. Full 3x3 convolutions only where the
channel count is small (first two layers); depthwise-separable residual
blocks after that. The global-average-pooled features are the embedding that
personal calibration fits its head on.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

EMBEDDING_LAYER = "embedding"
PROBABILITIES_LAYER = "probabilities"


def _conv(x: Any, filters: int, stride: int = 1) -> Any:
    x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def _separable(x: Any, filters: int, stride: int = 1, activate: bool = True) -> Any:
    x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Conv2D(filters, 1, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x) if activate else x


def _residual(x: Any, filters: int) -> Any:
    y = _separable(x, filters)
    y = _separable(y, filters, activate=False)
    return layers.ReLU()(layers.Add()([x, y]))


def build_model(size: int = 48, classes: int = 8, width: int = 32, dropout: float = 0.3) -> keras.Model:
    """A functional model: raw pixels 0..255 (N, size, size, 1) -> softmax and embedding."""
    inputs = keras.Input((size, size, 1), name="pixels")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    x = _conv(x, width)  # 48
    x = _conv(x, 2 * width, stride=2)  # 24
    x = _conv(x, 2 * width)
    x = _separable(x, 4 * width, stride=2)  # 12
    x = _residual(x, 4 * width)
    x = _residual(x, 4 * width)
    x = _separable(x, 8 * width, stride=2)  # 6
    x = _residual(x, 8 * width)
    x = _residual(x, 8 * width)
    x = _separable(x, 16 * width, stride=2)  # 3
    embedding = layers.GlobalAveragePooling2D(name=EMBEDDING_LAYER)(x)
    x = layers.Dropout(dropout)(embedding)
    probabilities = layers.Dense(classes, activation="softmax", name=PROBABILITIES_LAYER)(x)
    return keras.Model(inputs, [probabilities, embedding], name="edgemood_cnn")
