"""Checkpoints are plain dicts that rebuild the model; loading never unpickles objects."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .alphabets import get_alphabet
from .encoding import EncodingPolicy, LengthPolicy, SequenceEncoder
from .errors import BioseqError
from .io import atomic_path
from .models import SequenceModel, build_model
from .predict import Predictor
from .tasks import n_outputs


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """`None` -> CUDA when present, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)

FORMAT = "bioseq-checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(path: str | os.PathLike, model: SequenceModel, *, alphabet: str,
                    encoding: EncodingPolicy, length: LengthPolicy, task: str,
                    label_names: tuple[str, ...], target_scaling: dict | None = None,
                    training: dict[str, Any] | None = None) -> None:
    checkpoint = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "bioseq_version": __version__,
        "architecture": model.architecture, "hparams": dict(model.hparams),
        "input_length": model.input_length, "output": model.output,
        "alphabet": alphabet,
        "encoding": {"ambiguous": encoding.ambiguous, "soft_masked": encoding.soft_masked},
        "length": dataclasses.asdict(length),
        "task": task, "label_names": list(label_names), "target_scaling": target_scaling,
        "training": dict(training or {}),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def read_checkpoint(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise BioseqError("no such file", path=str(path))
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  torch raises many types for foreign files
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BioseqError(f"not a bioseq checkpoint ({first})", path=str(path)) from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise BioseqError("not a bioseq checkpoint", path=str(path))
    if checkpoint["format_version"] > FORMAT_VERSION:
        raise BioseqError(f"checkpoint format {checkpoint['format_version']} is newer than "
                          f"this bioseq ({__version__}) understands", path=str(path))
    return checkpoint


def file_checksum(path: str | os.PathLike) -> str:
    """`sha256:<hex>` of a file (the model named in annotated VCF headers)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def load_model(path: str | os.PathLike, *, device: str | torch.device | None = None) -> Predictor:
    """Load a checkpoint as a `Predictor` (`device=None` picks CUDA when present)."""
    checkpoint = read_checkpoint(path)
    alphabet = get_alphabet(checkpoint["alphabet"])
    model = build_model(checkpoint["architecture"], in_channels=alphabet.size,
                        n_outputs=n_outputs(checkpoint["task"], len(checkpoint["label_names"])),
                        input_length=checkpoint["input_length"],
                        output=checkpoint.get("output", "sequence"),
                        **checkpoint["hparams"])
    model.load_state_dict(checkpoint["state_dict"])
    model.to(pick_device(device))
    encoder = SequenceEncoder(alphabet, EncodingPolicy(**checkpoint["encoding"]),
                              LengthPolicy(**checkpoint["length"]))
    return Predictor(model, encoder=encoder, task=checkpoint["task"],
                     label_names=checkpoint["label_names"],
                     target_scaling=checkpoint["target_scaling"],
                     checkpoint={k: v for k, v in checkpoint.items() if k != "state_dict"})
