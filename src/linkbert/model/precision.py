"""Where the transformers backend's LayerNorms compute under autocast (``norm_precision``).

torch's autocast runs ``layer_norm`` in float32 whatever its input: in a post-LayerNorm BERT the
residual stream (each layer's ``LayerNorm(x + sublayer(x))``) is then float32, and every
projection that reads it casts it to the autocast dtype again. ``norm_precision=autocast`` runs
them in the autocast dtype instead (:func:`norms_in_autocast_dtype`): the kernels still take
mean and variance in float32 (PyTorch's layer-norm kernels accumulate in float32 for 16-bit
inputs), but read and write 16-bit values, so the residual stream and its casts take half the
memory traffic, as NVIDIA's and Megatron's mixed-precision BERTs run it. The weights stay
float32; the checkpoint is the same. What it gains is a GPU measurement (``benchmarks/gpu_check.sh``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NORM_PRECISIONS = ("fp32", "autocast")


class AutocastLayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` that, under autocast, computes in the autocast dtype (its parameters cast
    to it, as a matmul's are); float32 outside autocast, as before."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        device = x.device.type
        if not torch.is_autocast_enabled(device):
            return super().forward(x)
        dtype = torch.get_autocast_dtype(device)
        with torch.autocast(device, enabled=False):
            return F.layer_norm(x.to(dtype), self.normalized_shape,
                                self.weight.to(dtype) if self.weight is not None else None,
                                self.bias.to(dtype) if self.bias is not None else None, self.eps)


def norms_in_autocast_dtype(module: nn.Module, on: bool = True) -> int:
    """Make every ``nn.LayerNorm`` of ``module`` an :class:`AutocastLayerNorm` (``on``), or a
    plain one again; the same parameters and names. Returns how many it changed."""
    changed = 0
    for layer in module.modules():
        if isinstance(layer, nn.LayerNorm):
            wanted = AutocastLayerNorm if on else nn.LayerNorm
            if type(layer) is not wanted:
                layer.__class__ = wanted
                changed += 1
    return changed
