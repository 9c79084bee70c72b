"""The MLPerf Tiny keyword-spotting DS-CNN, in Keras, at a chosen width.

MLPerf Tiny's ``ds_cnn`` (KWS reference model): conv 64 filters 10 x 4, stride 2, batch norm,
ReLU, dropout 0.2; four depthwise-separable blocks (depthwise 3 x 3 + batch norm + ReLU,
pointwise 64 + batch norm + ReLU); dropout 0.4; average pool over the whole map; dense 12.
Here its input is the project's own front end: 49 frames x 40 integer log-mel bands (uint8,
fed as ``(feature - 128) / 64``, so int8 quantisation of the input is exact), not the
49 x 10 MFCC of the reference, which makes the map after the first conv 25 x 20 instead of
25 x 5 and the MACs about four times the reference's 2.66 M (``macs`` counts them).
``width`` scales every layer's 64 channels (1, 0.5, 0.25: 64, 32, 16).
"""
from __future__ import annotations

from typing import Any

from qsnnkit.spec import CLIP_FRAMES, N_BANDS

#: channels of the full-width model
FULL_CHANNELS = 64
N_BLOCKS = 4
FIRST_KERNEL = (10, 4)
FIRST_STRIDE = (2, 2)
L2 = 1e-4


def channels(width: float) -> int:
    c = int(round(FULL_CHANNELS * width))
    if c < 1:
        raise ValueError(f"width {width} leaves no channels")
    return c


def build(width: float, n_classes: int = 12) -> Any:
    """A Keras model: float input [batch, CLIP_FRAMES, N_BANDS, 1] -> logits [batch, n_classes]."""
    import keras
    from keras import layers

    c = channels(width)
    reg = keras.regularizers.l2(L2)
    inp = keras.Input(shape=(CLIP_FRAMES, N_BANDS, 1), name="features")
    x = layers.Conv2D(c, FIRST_KERNEL, strides=FIRST_STRIDE, padding="same", kernel_regularizer=reg)(inp)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.Dropout(0.2)(x)
    for _ in range(N_BLOCKS):
        x = layers.DepthwiseConv2D(3, padding="same", depthwise_regularizer=reg)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.Conv2D(c, 1, padding="same", kernel_regularizer=reg)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
    x = layers.Dropout(0.4)(x)
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Dense(n_classes, name="logits")(x)
    return keras.Model(inp, out, name=f"ds_cnn_w{c}")


def feature_map() -> tuple[int, int]:
    """(frames, bands) after the strided first conv ('same' padding)."""
    return (-(-CLIP_FRAMES // FIRST_STRIDE[0]), -(-N_BANDS // FIRST_STRIDE[1]))


def macs(width: float, n_classes: int = 12) -> int:
    """Multiply-accumulates of one inference (batch norm folded; pooling not counted)."""
    c = channels(width)
    h, w = feature_map()
    first = h * w * c * FIRST_KERNEL[0] * FIRST_KERNEL[1]
    block = h * w * c * 9 + h * w * c * c
    return first + N_BLOCKS * block + c * n_classes


def parameters(width: float, n_classes: int = 12) -> int:
    """Parameters of the deployed model (batch norm folded into the convolutions)."""
    c = channels(width)
    first = FIRST_KERNEL[0] * FIRST_KERNEL[1] * c + c
    block = 9 * c + c + c * c + c
    return first + N_BLOCKS * block + c * n_classes + n_classes
