"""Inference: batched scores for loaders, and the `Predictor` behind `bioseq.load_model`."""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from . import tasks
from .data import BatchLoader, TokenExpander
from .encoding import SequenceEncoder
from .errors import BioseqError
from .io import iter_chunks, write_text_atomic


@torch.no_grad()
def predict_scores(model: torch.nn.Module, loader: BatchLoader, expander: TokenExpander, *,
                   task: str, rc_average: bool = False, with_loss: bool = False,
                   class_weights: torch.Tensor | None = None, window: int | None = None,
                   overlap: int = 0, autocast: bool = True):
    """Scores (n, outputs) in the order of `loader.indices`, or (n, classes, width) for
    per-residue tasks (predicted in windows of `window` positions when set); with
    `with_loss` also the mean loss."""
    if task == "per_residue":
        if rc_average:
            raise BioseqError("rc_average is not available for per-residue models")
        return predict_residue_scores(
            model, loader.tokens, loader.starts, loader.lengths, loader.indices, expander,
            window=window, overlap=overlap, batch_size=loader.batch_size,
            targets=loader.targets if with_loss else None, class_weights=class_weights)
    model.eval()
    device = next(model.parameters()).device
    precision = dict(device_type=device.type, dtype=torch.bfloat16,
                     enabled=autocast and device.type == "cuda")
    chunks, order, total, count = [], [], 0.0, 0
    for batch in loader:
        order.append(batch.index)
        with torch.autocast(**precision):
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


RESIDUE_GROUP = 512  # proteins predicted together by Predictor.predict (sorted by length)


class ResidueWindows(NamedTuple):
    record: np.ndarray  # (pieces,) which sequence (position in the list of lengths)
    begin: np.ndarray  # (pieces,) first residue of the piece
    end: np.ndarray  # (pieces,) one past its last residue
    keep_from: np.ndarray  # (pieces,) the piece gives the predictions of residues
    keep_to: np.ndarray  # [keep_from, keep_to): the middle of each overlap is the seam


def residue_windows(lengths: np.ndarray, *, window: int | None, overlap: int) -> ResidueWindows:
    """Cut sequences longer than `window` into windows sharing `overlap` residues."""
    parts: list[tuple[int, int, int, int, int]] = []
    for record, length in enumerate(np.asarray(lengths).tolist()):
        if window is None or length <= window:
            parts.append((record, 0, length, 0, length))
            continue
        # evenly spread windows, neighbours sharing at least `overlap` residues
        count = -(-(length - overlap) // (window - overlap))
        begins = np.linspace(0, length - window, count).round().astype(int).tolist()
        seams = [0, *((b + prev + window) // 2 for prev, b in itertools.pairwise(begins)), length]
        parts += [(record, b, b + window, seams[k], seams[k + 1]) for k, b in enumerate(begins)]
    columns = np.array(parts, np.int64).reshape(-1, 5).T
    return ResidueWindows(*columns)


@torch.no_grad()
def predict_residue_scores(model: torch.nn.Module, tokens: np.ndarray, starts: np.ndarray,
                           lengths: np.ndarray, indices: np.ndarray, expander: TokenExpander, *,
                           window: int | None = None, overlap: int = 0, batch_size: int = 64,
                           targets: np.ndarray | None = None,
                           class_weights: torch.Tensor | None = None):
    """Per-residue probabilities (n, classes, width) for rows `indices` of a (N, width) token
    matrix, every residue predicted: sequences longer than `window` in overlapping windows,
    stitched. With `targets` (N, width) also returns the mean loss over counted residues."""
    model.eval()
    device = next(model.parameters()).device
    indices = np.asarray(indices)
    pieces = residue_windows(lengths[indices], window=window, overlap=overlap)
    sizes = pieces.end - pieces.begin
    piece_tokens = np.full((len(sizes), max(int(sizes.max(initial=1)), 1)),
                           expander.alphabet.pad_token, np.uint8)  # (pieces, window)
    for p, (record, begin, end) in enumerate(zip(pieces.record, pieces.begin, pieces.end,
                                                 strict=True)):
        row = indices[record]
        piece_tokens[p, : end - begin] = tokens[row, starts[row] + begin : starts[row] + end]
    loader = BatchLoader(piece_tokens, np.zeros(len(sizes), np.int32), sizes,
                         np.arange(len(sizes)), batch_size=batch_size, trim=True, bucket=True,
                         device=device)
    autocast = dict(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    out = None
    for batch in loader:
        with torch.autocast(**autocast):
            probs = tasks.scores("per_residue", model(*expander(batch))).cpu().numpy()
        if out is None:  # (n, classes, width)
            out = np.zeros((len(indices), probs.shape[1], tokens.shape[1]), np.float32)
        for k, p in enumerate(batch.index):
            row, lo, hi = indices[pieces.record[p]], pieces.keep_from[p], pieces.keep_to[p]
            begin, start = pieces.begin[p], starts[row]
            out[pieces.record[p], :, start + lo : start + hi] = probs[k, :, lo - begin : hi - begin]
    if out is None:
        out = np.zeros((0, 0, tokens.shape[1]), np.float32)
    if targets is None:
        return out
    return out, residue_loss(out, targets[indices], class_weights)


def residue_loss(probs: np.ndarray, targets: np.ndarray,
                 class_weights: torch.Tensor | None = None) -> float:
    """Mean (weighted) cross-entropy over counted residues: probs (n, C, L), targets (n, L)."""
    counted = targets != tasks.IGNORE
    picked = np.take_along_axis(probs, np.where(counted, targets, 0)[:, None, :].astype(np.int64),
                                axis=1)[:, 0][counted]  # (residues,)
    weights = (class_weights.cpu().numpy()[targets[counted]] if class_weights is not None
               else np.ones(len(picked), np.float32))
    return float((weights * -np.log(np.maximum(picked, 1e-12))).sum() / max(weights.sum(), 1e-12))


class Predictor:
    """A trained model with everything needed to encode new sequences for it."""

    def __init__(self, model: torch.nn.Module, *, encoder: SequenceEncoder, task: str,
                 label_names: Sequence[str], target_scaling: dict | None = None,
                 checkpoint: Mapping | None = None):
        self.model, self.encoder, self.task = model.eval(), encoder, task
        self.window = self.overlap = None
        if task == "per_residue":  # whole proteins, predicted in windows of max_length
            self.window, self.overlap = encoder.length.max_length, encoder.length.window_overlap
            whole = dataclasses.replace(encoder.length, max_length=None, overlap=None)
            self.encoder = SequenceEncoder(encoder.alphabet, encoder.encoding, whole)
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
        if not sequences and self.task == "per_residue":
            return self.residue_frame([], [], np.zeros((0, len(self.label_names), 0)), [])
        if not sequences:
            return self.frame([], np.zeros((0, len(self.label_names)), np.float32))
        if self.task == "per_residue":
            return self._predict_residues(ids, sequences, batch_size=batch_size, source=source)
        chunk = self.encoder.encode(ids, sequences, source=source)
        scores = self.score_tokens(chunk.tokens, chunk.starts, chunk.lengths,
                                   batch_size=batch_size, rc_average=rc_average)
        return self.frame(ids, scores)

    def score_tokens(self, tokens: np.ndarray, starts: np.ndarray, lengths: np.ndarray, *,
                     batch_size: int, rc_average: bool = False,
                     full_precision: bool = False) -> np.ndarray:
        """Encoded rows (n, width) -> scores (n, outputs) in the model's units, in row
        order. `full_precision` keeps float32 on GPUs (for differences of two scores)."""
        loader = BatchLoader(tokens, starts, lengths, np.arange(len(tokens)),
                             batch_size=batch_size, trim=self.encoder.length.length is None,
                             device=self.device)
        scores = predict_scores(self.model, loader, self.expander, task=self.task,
                                rc_average=rc_average, autocast=not full_precision)
        return tasks.unscale(self.task, scores, self.target_scaling)

    def predict_fasta(self, path: str | os.PathLike, *, batch_size: int = 256,
                      rc_average: bool = False,
                      records: tuple[int, int] | None = None) -> pd.DataFrame:
        """Predict every record of a FASTA file (read in chunks), or the records numbered
        [begin, end) of `records` (0-based, in file order: one shard of the file)."""
        begin, end = records if records is not None else (0, None)
        frames, seen = [], 0
        for ids, seqs, _ in iter_chunks(str(path)):
            first, seen = seen, seen + len(ids)
            if seen <= begin:
                continue
            low, high = max(begin - first, 0), None if end is None else end - first
            frames.append(self.predict(seqs[low:high], ids=ids[low:high],
                                       batch_size=batch_size, rc_average=rc_average,
                                       source=str(path)))
            if end is not None and seen >= end:
                break
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

    def _predict_residues(self, ids: list[str], sequences: list[str], *, batch_size: int,
                          source: str) -> pd.DataFrame:
        """Per-residue predictions in groups of similar length, so that memory follows each
        group's longest protein rather than the longest of all; rows in input order."""
        order = np.argsort(np.fromiter(map(len, sequences), np.int64, len(sequences)),
                           kind="stable")
        frames = []
        for group in np.array_split(order, -(-len(order) // RESIDUE_GROUP)):
            group_ids, group_seqs = [ids[i] for i in group], [sequences[i] for i in group]
            chunk = self.encoder.encode(group_ids, group_seqs, source=source)
            scores = predict_residue_scores(
                self.model, chunk.tokens, chunk.starts, chunk.lengths, np.arange(len(group)),
                self.expander, window=self.window, overlap=self.overlap, batch_size=batch_size)
            frames.append(self.residue_frame(group_ids, group_seqs, scores, chunk.starts))
        frame = pd.concat(frames, ignore_index=True)
        return frame.iloc[np.argsort(order)].reset_index(drop=True)

    def residue_frame(self, ids: Sequence[str], sequences: Sequence[str], scores: np.ndarray,
                      starts: Sequence[int]) -> pd.DataFrame:
        """Per-residue scores (n, classes, width) -> one row per sequence: the predicted
        label string, its mean confidence, and per class an array of probabilities."""
        names = self.label_names
        rows = []
        for i, (seq, start) in enumerate(zip(sequences, starts, strict=True)):
            probs = scores[i, :, start : start + len(seq)]  # (classes, length)
            best = probs.argmax(0)
            row = {"id": ids[i], "sequence": seq, "length": len(seq),
                   "predicted": "".join(names[c] for c in best),
                   "confidence": float(probs.max(0).mean()) if len(seq) else float("nan")}
            row.update({f"prob_{name}": probs[j].copy() for j, name in enumerate(names)})
            rows.append(row)
        columns = ["id", "sequence", "length", "predicted", "confidence",
                   *(f"prob_{n}" for n in names)]
        return pd.DataFrame(rows, columns=columns)


def residue_long_form(frame: pd.DataFrame, label_names: Sequence[str]) -> pd.DataFrame:
    """One row per residue (id, position from 1, residue, predicted, prob_*) from a
    per-sequence residue frame; a `label` column (true strings) is carried over per residue."""
    lengths = frame["length"].to_numpy(np.int64)
    long = pd.DataFrame({
        "id": np.repeat(frame["id"].to_numpy(object), lengths),
        "position": np.concatenate([np.arange(1, n + 1) for n in lengths]) if len(frame)
        else np.zeros(0, np.int64),
        "residue": list("".join(frame["sequence"])),
    })
    for column in ("label", "predicted"):
        if column in frame:
            long[column] = list("".join(frame[column]))
    for name in label_names:
        values = frame[f"prob_{name}"].tolist()
        long[f"prob_{name}"] = np.concatenate(values) if values else np.zeros(0, np.float32)
    return long


def write_residue_fasta(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Predicted label strings as FASTA, one record per sequence, in the frame's order."""
    text = "".join(f">{i}\n{p}\n" for i, p in zip(frame["id"], frame["predicted"], strict=True))
    write_text_atomic(path, text)
