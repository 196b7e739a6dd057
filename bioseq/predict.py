"""Inference: batched scores for loaders, and the `Predictor` behind `bioseq.load_model`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from . import tasks
from .data import BatchLoader, TokenExpander
from .encoding import SequenceEncoder
from .errors import BioseqError
from .io import iter_chunks


@torch.no_grad()
def predict_scores(model: torch.nn.Module, loader: BatchLoader, expander: TokenExpander, *,
                   task: str, rc_average: bool = False, with_loss: bool = False,
                   class_weights: torch.Tensor | None = None):
    """Scores (n, outputs) in the order of `loader.indices`; with `with_loss` also the
    mean loss."""
    model.eval()
    device = next(model.parameters()).device
    autocast = dict(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    chunks, order, total, count = [], [], 0.0, 0
    for batch in loader:
        order.append(batch.index)
        with torch.autocast(**autocast):
            logits = model(*expander(batch))
            if rc_average:
                logits_rc = model(*expander(batch, reverse=True))
        scores = tasks.scores(task, logits)
        if rc_average:
            scores = (scores + tasks.scores(task, logits_rc)) / 2
        if with_loss:
            total += tasks.loss(task, logits, batch.targets, class_weights).item() * len(logits)
            count += len(logits)
        chunks.append(scores.cpu().numpy())
    scores = np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)
    if chunks:  # back to the order of loader.indices (bucketing may have reordered them)
        sorter = np.argsort(loader.indices)
        position = sorter[np.searchsorted(loader.indices, np.concatenate(order), sorter=sorter)]
        scores = scores[np.argsort(position)]
    return (scores, total / max(count, 1)) if with_loss else scores


class Predictor:
    """A trained model with everything needed to encode new sequences for it."""

    def __init__(self, model: torch.nn.Module, *, encoder: SequenceEncoder, task: str,
                 label_names: Sequence[str], target_scaling: dict | None = None,
                 checkpoint: Mapping | None = None):
        self.model, self.encoder, self.task = model.eval(), encoder, task
        self.label_names = tuple(label_names)
        self.target_scaling = target_scaling
        self.checkpoint = dict(checkpoint or {})
        self.device = next(model.parameters()).device
        self.expander = TokenExpander(encoder.alphabet, ambiguous=encoder.encoding.ambiguous,
                                      device=self.device)

    @property
    def alphabet(self):
        return self.encoder.alphabet

    def predict(self, sequences: Sequence[str] | Mapping[str, str], *,
                ids: Sequence[str] | None = None, batch_size: int = 256,
                rc_average: bool = False, source: str = "<sequences>") -> pd.DataFrame:
        """Predict strings (a list, or a mapping id -> sequence) -> one row per sequence."""
        if isinstance(sequences, Mapping):
            ids, sequences = list(sequences.keys()), list(sequences.values())
        sequences = list(sequences)
        ids = list(ids) if ids is not None else [f"seq{i + 1}" for i in range(len(sequences))]
        if len(ids) != len(sequences):
            raise BioseqError(f"{len(ids)} ids for {len(sequences)} sequences")
        if rc_average and not self.alphabet.has_strands:
            raise BioseqError(f"rc_average needs a DNA/RNA model, not {self.alphabet.name}")
        if not sequences:
            return self.frame([], np.zeros((0, len(self.label_names)), np.float32))
        chunk = self.encoder.encode(ids, sequences, source=source)
        loader = BatchLoader(chunk.tokens, chunk.starts, chunk.lengths,
                             np.arange(len(sequences)), batch_size=batch_size,
                             trim=self.encoder.length.length is None, device=self.device)
        scores = predict_scores(self.model, loader, self.expander, task=self.task,
                                rc_average=rc_average)
        return self.frame(ids, tasks.unscale(self.task, scores, self.target_scaling))

    def predict_fasta(self, path: str | os.PathLike, *, batch_size: int = 256,
                      rc_average: bool = False) -> pd.DataFrame:
        """Predict every record of a FASTA file (read in chunks)."""
        frames = [self.predict(seqs, ids=ids, batch_size=batch_size, rc_average=rc_average,
                               source=str(path))
                  for ids, seqs, _ in iter_chunks(str(path))]
        return pd.concat(frames, ignore_index=True) if frames else self.predict([])

    def frame(self, ids: Sequence[str], scores: np.ndarray) -> pd.DataFrame:
        """Scores (n, outputs) in the model's units -> the prediction table."""
        names = self.label_names
        frame = pd.DataFrame({"id": list(ids)})
        if self.task in ("binary", "multiclass"):
            frame["predicted"] = [names[i] for i in scores.argmax(1)] if len(scores) else []
            for j, name in enumerate(names):
                frame[f"prob_{name}"] = scores[:, j]
        elif self.task == "multilabel":
            frame["predicted"] = [";".join(n for n, p in zip(names, row, strict=True) if p >= 0.5)
                                  for row in scores]
            for j, name in enumerate(names):
                frame[f"prob_{name}"] = scores[:, j]
        else:
            for j, name in enumerate(names):
                frame[f"pred_{name}"] = scores[:, j]
        return frame
