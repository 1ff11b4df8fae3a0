# Copyright 2026 The Zoo authors. Licensed under the Apache License, Version 2.0.
"""Configuration of the Zeta model."""


class ZetaConfig:
    r"""
    Configuration of a [`ZetaModel`].

    Args:
        num_layers (`int`, *optional*, defaults to 2):
            Number of zeta layers.
        weight (`float`, *optional*, defaults to 0.5):
            Weight of every zeta layer.
    """

    model_type = "zeta"

    def __init__(self, num_layers: int = 2, weight: float = 0.5):
        self.num_layers = num_layers
        self.weight = weight
