"""Model registry. Every architecture is a *backbone* that maps
`(batch, alphabet, length)` one-hot input and a `(batch, length)` mask to per-position
features `(batch, channels, length')` and their mask; a *head* turns those into outputs.
`SequenceHead` pools over real positions for per-sequence tasks (any length);
`FlattenHead` keeps position information for fixed-width inputs (`head_pool: flatten`);
`PositionHead` gives one output vector per position (`output="position"`, per-residue tasks).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..errors import BioseqError
from .heads import FlattenHead, PositionHead, SequenceHead

BackboneFactory = Callable[..., nn.Module]
REGISTRY: dict[str, BackboneFactory] = {}
HEAD_PARAMS = ("head_hidden", "head_dropout", "head_pool")
OUTPUTS = ("sequence", "position")


def register(name: str) -> Callable[[BackboneFactory], BackboneFactory]:
    def add(factory: BackboneFactory) -> BackboneFactory:
        REGISTRY[name] = factory
        return factory

    return add


class SequenceModel(nn.Module):
    """Backbone + head; remembers how it was built so checkpoints can rebuild it."""

    def __init__(self, architecture: str, backbone: nn.Module, head: nn.Module,
                 hparams: dict[str, Any]):
        super().__init__()
        self.architecture, self.hparams = architecture, hparams
        self.input_length: int | None = None
        self.output = "sequence"
        self.backbone, self.head = backbone, head

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: (batch, alphabet, length) float; mask: (batch, length) bool
        -> (batch, outputs), or (batch, outputs, length) for per-position models."""
        features, feature_mask = self.backbone(x, mask)
        return self.head(features, feature_mask)


def build_model(architecture: str, *, in_channels: int, n_outputs: int,
                input_length: int | None = None, output: str = "sequence",
                **hparams: Any) -> SequenceModel:
    """Build a registered architecture; unknown names or hyper-parameters are clear errors.

    `output="position"` gives per-position outputs (the backbone must keep the length, so
    no pooling); `input_length` is the fixed window width, needed only by
    `head_pool: flatten`.
    """
    if architecture not in REGISTRY:
        raise BioseqError(f"unknown architecture '{architecture}' "
                          f"(choose from {', '.join(sorted(REGISTRY))})")
    if output not in OUTPUTS:
        raise BioseqError(f"output must be one of {OUTPUTS}, not '{output}'")
    head_kwargs = {k.removeprefix("head_"): hparams[k] for k in HEAD_PARAMS if k in hparams}
    pool = head_kwargs.pop("pool", "meanmax")
    backbone_kwargs = {k: v for k, v in hparams.items() if k not in HEAD_PARAMS}
    try:
        backbone = REGISTRY[architecture](in_channels, **backbone_kwargs)
    except (TypeError, ValueError, AssertionError) as err:  # torch's own argument checks
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise BioseqError(f"architecture '{architecture}': {message}") from None
    if output == "position":
        head = _position_head(architecture, backbone, in_channels, n_outputs, pool, head_kwargs)
    elif pool == "flatten":
        if input_length is None:
            raise BioseqError("head_pool: flatten needs fixed-length input (dataset length: N)")
        positions = _feature_positions(backbone, in_channels, input_length)
        head = FlattenHead(backbone.out_channels, n_outputs, positions=positions, **head_kwargs)
    elif pool == "meanmax":
        head = SequenceHead(backbone.out_channels, n_outputs, **head_kwargs)
    else:
        raise BioseqError(f"head_pool must be 'meanmax' or 'flatten', not '{pool}'")
    model = SequenceModel(architecture, backbone, head, dict(hparams))
    model.input_length, model.output = input_length, output
    return model


def _position_head(architecture: str, backbone: nn.Module, in_channels: int, n_outputs: int,
                   pool: str, head_kwargs: dict) -> PositionHead:
    if pool != "meanmax":
        raise BioseqError("head_pool does not apply to per-position outputs")
    for length in (1, 37):  # a backbone that pools would shorten one of these
        if _feature_positions(backbone, in_channels, length) != length:
            raise BioseqError(f"architecture '{architecture}' changes the sequence length, so "
                              "it cannot give per-position outputs (set pool: 1)")
    return PositionHead(backbone.out_channels, n_outputs, **head_kwargs)


@functools.cache  # asked on every recurrent forward; the hardware does not change
def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX), as oneDNN decides it.
    Elsewhere (AVX2 only) bf16 is emulated: convolutions run ~10x slower than in fp32."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


@torch.no_grad()
def _feature_positions(backbone: nn.Module, in_channels: int, length: int) -> int:
    """Feature length the backbone makes from a window of `length` positions."""
    was_training = backbone.training
    backbone.eval()
    features, _ = backbone(torch.zeros(1, in_channels, length),
                           torch.ones(1, length, dtype=torch.bool))
    backbone.train(was_training)
    return features.shape[-1]


from . import cnn, recurrent, transformer  # noqa: E402,F401  (they register themselves)
