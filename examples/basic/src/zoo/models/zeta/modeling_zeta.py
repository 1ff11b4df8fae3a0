# Copyright 2026 The Zoo authors. Licensed under the Apache License, Version 2.0.
"""The Zeta model: a stack of scaled tanh layers."""

import math

from .configuration_zeta import ZetaConfig


ZETA_SCALE = 2.0


def zeta_activation(x: float) -> float:
    """Scaled tanh used by every zeta layer."""
    return math.tanh(x) * ZETA_SCALE


class ZetaLayer:
    """One zeta layer."""

    def __init__(self, config: ZetaConfig):
        self.weight = config.weight

    def forward(self, x: float) -> float:
        return zeta_activation(x * self.weight)


class ZetaModel:
    """The bare Zeta model."""

    def __init__(self, config: ZetaConfig):
        self.config = config
        self.layers = [ZetaLayer(config) for _ in range(config.num_layers)]
        self.bias = 0.0

    def forward(self, x: float) -> float:
        for layer in self.layers:
            x = layer.forward(x)
        return x + self.bias

    def describe(self) -> str:
        return f"zeta model with {len(self.layers)} layers"
