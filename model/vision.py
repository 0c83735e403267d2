"""SigLIP vision tower with the published feature selection.

TinyLLaVA-Video feeds the resampler with the hidden states of the second-to-last encoder layer
(`vision_feature_layer = -2`) with the first token dropped (`patch` strategy; SigLIP has no CLS
token, so this drops the first patch, exactly as the published model was trained). Only the
layers that feed the selected hidden state are run: the last layer and the pooling head never
contribute to the features, so computing them would be wasted work.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import SiglipVisionConfig, SiglipVisionModel


class VisionTower(nn.Module):
    """Frames `[N, 3, S, S]` -> per-frame visual tokens `[N, P, Dv]`."""

    def __init__(
        self, config: SiglipVisionConfig, feature_layer: int = -2, select_strategy: str = "patch"
    ) -> None:
        super().__init__()
        self.siglip = SiglipVisionModel(config)
        self.feature_layer = feature_layer
        self.select_strategy = select_strategy

    @property
    def _core(self) -> nn.Module:
        # transformers < 5 nests the tower under `vision_model`; 5.x keeps it flat.
        return getattr(self.siglip, "vision_model", self.siglip)

    @property
    def layers_needed(self) -> int:
        """How many encoder layers produce `hidden_states[feature_layer]`."""
        n = len(self._core.encoder.layers)
        return self.feature_layer if self.feature_layer >= 0 else n + 1 + self.feature_layer

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        core = self._core
        hidden = core.embeddings(pixel_values)  # [N, P, Dv]
        for layer in core.encoder.layers[: self.layers_needed]:
            out = layer(hidden, None)
            hidden = out[0] if isinstance(out, tuple) else out
        if self.select_strategy == "patch":
            hidden = hidden[:, 1:]
        return hidden
