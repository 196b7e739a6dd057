"""One `fit()` for every architecture and task."""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from . import tasks
from .checkpoint import pick_device, save_checkpoint
from .config import SCHEDULES
from .data import BatchLoader, TokenExpander
from .encoding import EncodingPolicy, LengthPolicy
from .errors import BioseqError
from .io import write_text_atomic
from .metrics import MONITORS, compute_metrics, is_better
from .models import build_model
from .predict import predict_scores
from .store import EncodedStore

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    best_epoch: int
    best_score: float | None
    monitor: str
    history: pd.DataFrame
    seconds: float
    device: str


def _lr_lambda(schedule: str, total_steps: int, warmup_fraction: float):
    warmup = max(1, int(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if schedule == "constant":
            return 1.0
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule '{schedule}' (one of {SCHEDULES})")
    return factor


class _EarlyStopping:
    """Tracks the best epoch of `monitor` and keeps a CPU copy of its weights."""

    def __init__(self, monitor: str, patience: int):
        self.monitor, self.patience = monitor, patience
        self.best_score: float | None = None
        self.best_epoch, self.best_state, self.stale = 0, None, 0

    def update(self, epoch: int, row: dict, model: torch.nn.Module) -> bool:
        """Record an epoch; True when training should stop."""
        if self.monitor not in row:
            raise BioseqError(f"monitor '{self.monitor}' is not one of {sorted(row)}")
        if is_better(self.monitor, row[self.monitor], self.best_score) or self.best_state is None:
            self.best_score, self.best_epoch, self.stale = row[self.monitor], epoch, 0
            self.best_state = copy.deepcopy({k: v.detach().cpu()
                                             for k, v in model.state_dict().items()})
        else:
            self.stale += 1
        return self.stale >= self.patience


def _train_epoch(model, loader: BatchLoader, expander: TokenExpander, optimizer, scheduler, *,
                 task: str, weights, grad_clip: float | None, rc_augment: bool,
                 generator: torch.Generator, autocast: dict) -> float:
    """One pass over `loader`; returns the mean training loss."""
    model.train()
    total, count = 0.0, 0
    for batch in loader:
        if rc_augment:
            batch = expander.random_reverse(batch, generator)
        x, mask = expander(batch)  # (B, alphabet, L) float, (B, L) bool
        with torch.autocast(**autocast):
            loss = tasks.loss(task, model(x, mask), batch.targets, weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        scheduler.step()
        total += loss.item() * len(batch.index)
        count += len(batch.index)
    return total / max(count, 1)


def fit(
    model: torch.nn.Module, train: BatchLoader, val: BatchLoader, *, expander: TokenExpander,
    task: str, label_names: tuple[str, ...], val_targets: np.ndarray, epochs: int = 30,
    lr: float = 1e-3, weight_decay: float = 1e-2, schedule: str = "cosine",
    warmup_fraction: float = 0.05, grad_clip: float | None = 1.0,
    class_weights: torch.Tensor | None = None, monitor: str = "val_loss", patience: int = 8,
    seed: int = 0, rc_augment: bool = False, device: torch.device | None = None,
    target_scaling: dict | None = None, history_path: str | Path | None = None,
    progress: bool | None = None, window: int | None = None, overlap: int = 0,
) -> FitResult:
    """Train with AdamW, warmup + cosine LR, clipping and early stopping on `monitor`.

    The model ends with the weights of its best validation epoch. `val_targets` are the
    labels of `val` in store form, for metrics (regression scores are unscaled with
    `target_scaling` first). `progress=None` shows a bar on terminals. Per-residue models
    are validated in windows of `window` positions sharing `overlap` (as they predict).
    """
    device = pick_device(device)
    torch.manual_seed(seed)  # dropout; the loaders carry their own seeded generators
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_lambda(schedule, epochs * len(train), warmup_fraction))
    step = dict(task=task, grad_clip=grad_clip, rc_augment=rc_augment,
                weights=class_weights.to(device) if class_weights is not None else None,
                generator=torch.Generator().manual_seed(seed),
                autocast=dict(device_type=device.type, dtype=torch.bfloat16,
                              enabled=device.type == "cuda"))
    stopper, rows, started = _EarlyStopping(monitor, patience), [], time.perf_counter()
    bar = tqdm(range(1, epochs + 1), desc="epochs", disable=True if progress is False else None)
    for epoch in bar:
        epoch_started = time.perf_counter()
        train_loss = _train_epoch(model, train, expander, optimizer, scheduler, **step)
        scores, val_loss = predict_scores(model, val, expander, task=task, with_loss=True,
                                          class_weights=step["weights"], window=window,
                                          overlap=overlap)
        metrics = compute_metrics(task, val_targets,
                                  tasks.unscale(task, scores, target_scaling), label_names)
        row = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
               **{k: v for k, v in metrics.items() if isinstance(v, float | None)},
               "lr": optimizer.param_groups[0]["lr"],
               "seconds": time.perf_counter() - epoch_started}
        rows.append(row)
        stop = stopper.update(epoch, row, model)
        bar.set_postfix({"train_loss": f"{train_loss:.4f}", monitor: row[monitor]})
        log.info("epoch %d: train_loss %.4f val_loss %.4f %s %s (%.1f s)", epoch, train_loss,
                 val_loss, monitor, row[monitor], row["seconds"])
        if history_path is not None:
            write_text_atomic(history_path, pd.DataFrame(rows).to_csv(sep="\t", index=False))
        if stop:
            break
    model.load_state_dict(stopper.best_state)
    history = pd.DataFrame(rows)
    history["best"] = history["epoch"] == stopper.best_epoch
    if history_path is not None:
        write_text_atomic(history_path, history.to_csv(sep="\t", index=False))
    return FitResult(stopper.best_epoch, stopper.best_score, monitor, history,
                     time.perf_counter() - started, str(device))


def _loaders(store: EncodedStore, indices: tuple[np.ndarray, np.ndarray], targets: np.ndarray,
             *, length: LengthPolicy, batch_size: int, seed: int,
             device: torch.device) -> list[BatchLoader]:
    """Shuffled training and ordered validation loaders; padded-to-longest stores are
    trimmed and bucketed per batch, per-residue training batches cropped to max_length."""
    per_residue = store.task == "per_residue"
    return [BatchLoader(store.tokens, store.starts, store.lengths, index, targets=targets,
                        batch_size=batch_size, shuffle=shuffle, seed=seed,
                        trim=length.length is None, bucket=length.length is None,
                        per_position=per_residue,
                        crop=length.max_length if per_residue and shuffle else None,
                        device=device)
            for index, shuffle in zip(indices, (True, False), strict=True)]


def train_from_store(store_dir: str | Path, *, architecture: str, params: dict, train: dict,
                     out_dir: str | Path, device: str | torch.device | None = None,
                     progress: bool | None = None) -> FitResult:
    """Train `architecture` on a store's train split, early-stop on its val split, and write
    `model.pt`, `history.tsv` and `train.json` into `out_dir`."""
    store, out_dir = EncodedStore(store_dir), Path(out_dir)
    train_index, val_index = store.indices("train"), store.indices("val")
    if not len(train_index) or not len(val_index):
        raise BioseqError("train and val splits must both be non-empty "
                          f"({len(train_index)} train, {len(val_index)} val)", path=str(store_dir))
    settings = dict(train)
    monitor = settings.get("monitor", "val_loss")
    if monitor not in MONITORS[store.task]:
        raise BioseqError(f"monitor '{monitor}' does not apply to a {store.task} task "
                          f"(choose from {', '.join(MONITORS[store.task])})")
    if monitor in ("q3", "q8") and monitor != f"q{len(store.label_names)}":
        raise BioseqError(f"monitor '{monitor}' needs {monitor[1]} classes; the data have "
                          f"{len(store.label_names)} (use accuracy)")
    if settings.get("rc_augment") and not store.alphabet.has_strands:
        raise BioseqError(f"rc_augment needs DNA/RNA, not {store.alphabet.name}")
    device = pick_device(device)
    task, names = store.task, store.label_names
    scaling = tasks.target_scaling(task, store.labels[train_index])
    targets = tasks.prepare_targets(task, store.labels, scaling)
    seed = settings.get("seed", 0)
    torch.manual_seed(seed)  # initial weights (fit() reseeds for dropout)
    model = build_model(architecture, in_channels=store.alphabet.size,
                        n_outputs=tasks.n_outputs(task, len(names)),
                        input_length=store.meta["length"]["length"],
                        output=tasks.output_kind(task), **params)
    batch_size = settings.pop("batch_size", 64)
    use_weights = settings.pop("class_weights", False)
    length = LengthPolicy(**store.meta["length"])
    if task == "per_residue":  # long proteins: cropped in training, windowed in validation
        settings.update(window=length.max_length, overlap=length.window_overlap)
    loaders = _loaders(store, (train_index, val_index), targets, length=length,
                       batch_size=batch_size, seed=seed, device=device)
    weights = (tasks.class_weights(task, store.labels[train_index], len(names))
               if use_weights else None)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = fit(model, *loaders, expander=TokenExpander(store.alphabet,
                 ambiguous=store.meta["encoding"]["ambiguous"], device=device), task=task,
                 label_names=names, val_targets=store.labels[val_index], class_weights=weights,
                 device=device, target_scaling=scaling, history_path=out_dir / "history.tsv",
                 progress=progress,
                 **settings)
    summary = {"dataset": store.meta["dataset"], "architecture": architecture,
               "best_epoch": result.best_epoch, "monitor": result.monitor,
               "best_score": result.best_score, "epochs_run": len(result.history),
               "seconds": round(result.seconds, 2), "device": result.device,
               "parameters": sum(p.numel() for p in model.parameters()),
               "train_records": len(train_index), "val_records": len(val_index)}
    save_checkpoint(out_dir / "model.pt", model, alphabet=store.meta["alphabet"],
                    encoding=EncodingPolicy(**store.meta["encoding"]), length=length, task=task,
                    label_names=names, target_scaling=scaling, training=summary)
    write_text_atomic(out_dir / "train.json", json.dumps(summary, indent=2) + "\n")
    return result

