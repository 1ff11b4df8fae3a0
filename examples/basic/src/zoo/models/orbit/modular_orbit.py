# Copyright 2026 The Zoo authors. Licensed under the Apache License, Version 2.0.
from ..zeta.configuration_zeta import ZetaConfig
from ..zeta.modeling_zeta import ZetaModel


# Edit this file and save: modwatch regenerates configuration_orbit.py and modeling_orbit.py
# beside it. OrbitModel inherits everything from ZetaModel and overrides what is written here.
class OrbitConfig(ZetaConfig):
    model_type = "orbit"


class OrbitModel(ZetaModel):
    def __init__(self, config: OrbitConfig):
        super().__init__(config)
        self.bias = 1.0

    def forward(self, x: float) -> float:
        return -x


__all__ = ["OrbitConfig", "OrbitModel"]
