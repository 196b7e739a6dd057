"""One `fit()` for every architecture and task."""

from __future__ import annotations

import copy
import hashlib
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

from . import __version__, tasks
from .checkpoint import pick_device, save_checkpoint
from .config import SCHEDULES, without_unset_later_keys
from .data import BatchLoader, TokenExpander
from .distributed import (
    SINGLE,
    Distributed,
    from_main,
    process_device,
    process_group,
    sum_over_processes,
)
from .encoding import EncodingPolicy, LengthPolicy
from .errors import BioseqError
from .io import atomic_path, write_text_atomic
from .metrics import MONITORS, compute_metrics, is_better
from .models import build_model, cpu_has_bf16
from .predict import predict_scores
from .store import EncodedStore

log = logging.getLogger(__name__)
RESUME_FILE = "resume.pt"  # training state after the last finished epoch


@dataclass
class FitResult:
    """`seconds`: training time; a resumed run adds the time of the earlier processes up
    to their last finished epoch (the epoch a kill interrupted is lost, and not counted)."""

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
            self.best_state = copy.deepcopy(_cpu_state(model))
        else:
            self.stale += 1
        return self.stale >= self.patience


class _WeightAverage:
    """An exponential moving average of a model's weights and float buffers (BatchNorm
    statistics), updated after every optimizer step. The decay ramps up as
    min(decay, (1 + t) / (10 + t)) so the random initial weights fade out of the average
    within the first few hundred steps."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.model = copy.deepcopy(model)  # the averaged copy; `model` keeps training
        self.decay, self.steps = decay, 0
        self._pairs = list(zip(self.model.state_dict().values(),
                               model.state_dict().values(), strict=True))

    @torch.no_grad()
    def update(self) -> None:
        self.steps += 1
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for average, live in self._pairs:
            if average.is_floating_point():
                average.lerp_(live, 1.0 - decay)
            else:  # counters such as num_batches_tracked
                average.copy_(live)

    def state(self) -> dict:
        return {"weights": _cpu_state(self.model), "steps": self.steps}

    def restore(self, state: dict) -> None:
        self.model.load_state_dict(state["weights"])
        self.steps = state["steps"]


def _autocasts(precision: str | None, device: torch.device) -> bool:
    """Whether training steps run under bf16 autocast (TrainConfig.precision)."""
    if precision == "bf16" and device.type == "cpu" and not cpu_has_bf16():
        # bf16 on a CPU is only ever asked for speed, and emulated it is the opposite
        log.warning("precision bf16: this CPU has no native bf16 (AVX-512 BF16 or AMX), "
                    "where bf16 autocast runs about 10x slower; training in fp32")
        return False
    return precision == "bf16" or (precision is None and device.type == "cuda")


def _seed_of(*parts: int) -> int:
    """A seed derived from (seed, epoch, ...): what resuming at an epoch needs to replay."""
    return int(np.random.SeedSequence(parts).generate_state(1)[0])


def _train_epoch(model, loader: BatchLoader, expander: TokenExpander, optimizer, scheduler, *,
                 task: str, weights, grad_clip: float | None, rc_augment: bool,
                 generator: torch.Generator, autocast: dict, world: int,
                 average: _WeightAverage | None = None, label_smoothing: float = 0.0) -> float:
    """One pass over `loader`; returns the mean training loss (over all processes)."""
    model.train()
    device = expander.table.device
    total = torch.zeros(2, dtype=torch.float64, device=device)  # loss sum, records
    for batch in loader:
        if rc_augment:
            batch = expander.random_reverse(batch, generator)
        x, mask = expander(batch)  # (B, alphabet, L) float, (B, L) bool
        with torch.autocast(**autocast):
            loss = tasks.loss(task, model(x, mask), batch.targets, weights,
                              label_smoothing=label_smoothing)
        total[0] += loss.detach().double() * len(batch.index)
        total[1] += len(batch.index)
        if batch.global_size:  # DDP averages over processes: weight by this part's share
            loss = loss * (len(batch.index) * world / batch.global_size)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        scheduler.step()
        if average is not None:
            average.update()
    total = sum_over_processes(total)
    return float(total[0] / total[1].clamp(min=1))


class _Resume:
    """The state of a training run at the end of its last finished epoch, in `path`, so a
    killed run continues where it stopped; `fingerprint` ties it to the run's settings."""

    def __init__(self, path: str | Path | None, fingerprint: str, enabled: bool):
        self.path, self.fingerprint, self.enabled = path, fingerprint, enabled

    def load(self) -> dict | None:
        if self.path is None or not Path(self.path).is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001  a file cut short by a kill: start afresh
            log.warning("ignoring unreadable %s (%s); training from scratch", self.path, err)
            return None
        if state.get("fingerprint") != self.fingerprint:
            log.warning("ignoring %s: it belongs to other settings or data", self.path)
            return None
        return state

    def save(self, **state) -> None:
        if self.path is not None and self.enabled:
            with atomic_path(self.path) as tmp:
                torch.save({"fingerprint": self.fingerprint, **state}, tmp)

    def clear(self) -> None:
        if self.path is not None and self.enabled:
            Path(self.path).unlink(missing_ok=True)


def _restore(state: dict, model, optimizer, scheduler, stopper: _EarlyStopping,
             average: _WeightAverage | None) -> tuple:
    """Load a resume state into the run; returns (next epoch, history rows, stopped)."""
    model.load_state_dict(state["model"])
    if average is not None:
        if "average" not in state:
            raise BioseqError("the resume state has no weight average (saved without "
                              "ema_decay); delete it to train afresh")
        average.restore(state["average"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    stopper.best_score, stopper.best_epoch = state["best_score"], state["best_epoch"]
    stopper.stale, stopper.best_state = state["stale"], state["best_state"]
    log.info("resuming after epoch %d (best so far: epoch %d)", state["epoch"],
             state["best_epoch"])
    return state["epoch"] + 1, list(state["rows"]), state["stopped"]


def _tune_for_device(device: torch.device, *, fixed_shapes: bool) -> None:
    """TF32 matmuls/convolutions on GPUs; cuDNN autotuning only when batch shapes repeat."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = fixed_shapes


def _wrap(model: torch.nn.Module, device: torch.device, distributed: Distributed,
          compile_model: bool) -> torch.nn.Module:
    """The module training steps call: DDP across processes (gradients averaged after every
    backward), compiled on request. Validation and checkpoints use `model` itself."""
    trained = model
    if distributed.world > 1:
        trained = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    return torch.compile(trained) if compile_model else trained


def _report_epoch(rows: list[dict], monitor: str, history_path: str | Path | None) -> None:
    row = rows[-1]
    watched = "" if monitor == "val_loss" else f" {monitor} {row[monitor]}"
    log.info("epoch %d: train_loss %.4f val_loss %.4f%s (%.1f s)", row["epoch"],
             row["train_loss"], row["val_loss"], watched, row["seconds"])
    if history_path is not None:
        write_text_atomic(history_path, pd.DataFrame(rows).to_csv(sep="\t", index=False))


def fit(
    model: torch.nn.Module, train: BatchLoader, val: BatchLoader, *, expander: TokenExpander,
    task: str, label_names: tuple[str, ...], val_targets: np.ndarray, epochs: int = 30,
    lr: float = 1e-3, weight_decay: float = 1e-2, schedule: str = "cosine",
    warmup_fraction: float = 0.05, grad_clip: float | None = 1.0,
    class_weights: torch.Tensor | None = None, monitor: str = "val_loss", patience: int = 8,
    seed: int = 0, rc_augment: bool = False, device: torch.device | None = None,
    target_scaling: dict | None = None, history_path: str | Path | None = None,
    progress: bool | None = None, window: int | None = None, overlap: int = 0,
    compile: bool = False, distributed: Distributed = SINGLE,
    resume_path: str | Path | None = None, fingerprint: str = "",
    ema_decay: float | None = None, precision: str | None = None,
    label_smoothing: float | None = None,
) -> FitResult:
    """Train with AdamW, warmup + cosine LR, clipping and early stopping on `monitor`.

    The model ends with the weights of its best validation epoch. `val_targets` are the
    labels of `val` in store form, for metrics (regression scores are unscaled with
    `target_scaling` first). `progress=None` shows a bar on terminals. Per-residue models
    are validated in windows of `window` positions sharing `overlap` (as they predict).
    With `resume_path`, the state after every epoch is kept there and a run that finds a
    state with its `fingerprint` continues after that epoch. Under `torchrun` pass the
    process's `distributed` context and a loader sharded to match; every process validates
    on the whole validation set, rank 0 alone writes files. With `ema_decay`, validation,
    early stopping and the returned weights are those of an exponential moving average of
    the weights over steps (`_WeightAverage`), which is less noisy than the last step's.
    Training steps run under bf16 autocast on CUDA, or everywhere with `precision='bf16'`
    (on CPUs with AVX-512 BF16 or AMX; elsewhere it warns and keeps fp32, as emulated
    bf16 is ~10x slower) or nowhere with 'fp32' (validation keeps
    the predictors' own: bf16 autocast on CUDA, fp32 on CPU). `label_smoothing` softens
    the training targets of classification tasks (`tasks.loss`); validation loss and
    metrics stay on the true labels.
    """
    device = pick_device(device)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_lambda(schedule, epochs * len(train), warmup_fraction))
    stopper, rows, started = _EarlyStopping(monitor, patience), [], time.perf_counter()
    resume = _Resume(resume_path, fingerprint, distributed.is_main)
    average = _WeightAverage(model, ema_decay) if ema_decay else None
    validated = average.model if average is not None else model
    first, stopped = 1, False
    if (state := resume.load()) is not None:
        first, rows, stopped = _restore(state, model, optimizer, scheduler, stopper, average)
        # earlier processes' time up to their last saved epoch counts (states written
        # before this was kept have only the epochs' own times)
        started -= state.get("seconds", sum(row["seconds"] for row in rows))
    trained = _wrap(model, device, distributed, compile)
    step = dict(task=task, grad_clip=grad_clip, rc_augment=rc_augment, world=distributed.world,
                average=average, label_smoothing=label_smoothing or 0.0,
                weights=class_weights.to(device) if class_weights is not None else None,
                generator=torch.Generator(),
                autocast=dict(device_type=device.type, dtype=torch.bfloat16,
                              enabled=_autocasts(precision, device)))
    _tune_for_device(device, fixed_shapes=not train.trim)
    bar = tqdm(range(first, epochs + 1), desc="epochs", initial=first - 1, total=epochs,
               disable=True if progress is False or not distributed.is_main else None)
    for epoch in bar if not stopped else ():
        epoch_started = time.perf_counter()
        # the epoch's randomness comes from (seed, epoch) alone, so a resumed run replays it
        torch.manual_seed(_seed_of(seed, epoch, distributed.rank))  # dropout
        step["generator"].manual_seed(_seed_of(seed, epoch, 1 << 20))  # RC flips: all ranks
        train.set_epoch(epoch)
        train_loss = _train_epoch(trained, train, expander, optimizer, scheduler, **step)
        scores, val_loss = predict_scores(validated, val, expander, task=task, with_loss=True,
                                          class_weights=step["weights"], window=window,
                                          overlap=overlap)
        metrics = compute_metrics(task, val_targets,
                                  tasks.unscale(task, scores, target_scaling), label_names)
        rows.append(row := {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                            **{k: v for k, v in metrics.items() if isinstance(v, float | None)},
                            "lr": optimizer.param_groups[0]["lr"],
                            "seconds": time.perf_counter() - epoch_started})
        stopped = from_main(stopper.update(epoch, row, validated) or epoch == epochs, device)
        bar.set_postfix({"train_loss": f"{train_loss:.4f}", monitor: row[monitor]})
        if distributed.is_main:
            _report_epoch(rows, monitor, history_path)
        resume.save(epoch=epoch, stopped=stopped, rows=rows, model=_cpu_state(model),
                    optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                    best_score=stopper.best_score, best_epoch=stopper.best_epoch,
                    seconds=time.perf_counter() - started,
                    stale=stopper.stale, best_state=stopper.best_state,
                    **({"average": average.state()} if average is not None else {}))
        if stopped:
            break
    model.load_state_dict(stopper.best_state)
    history = pd.DataFrame(rows)
    history["best"] = history["epoch"] == stopper.best_epoch
    if history_path is not None and distributed.is_main:
        write_text_atomic(history_path, history.to_csv(sep="\t", index=False))
    return FitResult(stopper.best_epoch, stopper.best_score, monitor, history,
                     time.perf_counter() - started, str(device))


def _cpu_state(model: torch.nn.Module) -> dict:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def _loaders(store: EncodedStore, indices: tuple[np.ndarray, np.ndarray], targets: np.ndarray,
             *, length: LengthPolicy, batch_size: int, seed: int, device: torch.device,
             distributed: Distributed = SINGLE) -> list[BatchLoader]:
    """Shuffled training (sharded over processes) and ordered validation loaders;
    padded-to-longest stores are trimmed and bucketed per batch, per-residue training
    batches cropped to max_length. Data that fit in a quarter of the free GPU memory are
    gathered on the GPU."""
    per_residue = store.task == "per_residue"
    resident = (device.type == "cuda" and store.tokens.nbytes + targets.nbytes
                < torch.cuda.mem_get_info(device)[0] // 4)
    return [BatchLoader(store.tokens, store.starts, store.lengths, index, targets=targets,
                        batch_size=batch_size, shuffle=shuffle, seed=seed,
                        trim=length.length is None, bucket=length.length is None,
                        per_position=per_residue,
                        crop=length.max_length if per_residue and shuffle else None,
                        device=device, resident=resident,
                        shard=(distributed.rank, distributed.world) if shuffle else (0, 1))
            for index, shuffle in zip(indices, (True, False), strict=True)]


def _fingerprint(store: EncodedStore, architecture: str, params: dict, settings: dict) -> str:
    """What a resume state must match: the data, the model and the training settings."""
    settings = without_unset_later_keys(settings)
    text = json.dumps([store.meta, architecture, params, settings, __version__],
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def train_from_store(store_dir: str | Path, *, architecture: str, params: dict, train: dict,
                     out_dir: str | Path, device: str | torch.device | None = None,
                     progress: bool | None = None,
                     distributed: Distributed = SINGLE) -> FitResult:
    """Train `architecture` on a store's train split, early-stop on its val split, and write
    `model.pt`, `history.tsv` and `train.json` into `out_dir`.

    A run killed mid-training resumes from `out_dir/resume.pt` (the state after its last
    finished epoch) when started again with the same data and settings. Under `torchrun`,
    pass `distributed.from_environment()`: each process trains on its part of every batch.
    """
    store, out_dir = EncodedStore(store_dir), Path(out_dir)
    train_index, val_index = store.indices("train"), store.indices("val")
    if not len(train_index) or not len(val_index):
        raise BioseqError("train and val splits must both be non-empty "
                          f"({len(train_index)} train, {len(val_index)} val)", path=str(store_dir))
    settings = dict(train)
    _check_settings(store, settings)
    device = process_device(distributed, device)
    task, names = store.task, store.label_names
    scaling = tasks.target_scaling(task, store.labels[train_index])
    targets = tasks.prepare_targets(task, store.labels, scaling)
    seed = settings.get("seed", 0)
    fingerprint = _fingerprint(store, architecture, params, settings)
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
    weights = (tasks.class_weights(task, store.labels[train_index], len(names))
               if use_weights else None)
    out_dir.mkdir(parents=True, exist_ok=True)
    with process_group(distributed, device):
        loaders = _loaders(store, (train_index, val_index), targets, length=length,
                           batch_size=batch_size, seed=seed, device=device,
                           distributed=distributed)
        result = fit(model, *loaders, expander=TokenExpander(store.alphabet,
                     ambiguous=store.meta["encoding"]["ambiguous"], device=device), task=task,
                     label_names=names, val_targets=store.labels[val_index],
                     class_weights=weights, device=device, target_scaling=scaling,
                     history_path=out_dir / "history.tsv", progress=progress,
                     distributed=distributed, resume_path=out_dir / RESUME_FILE,
                     fingerprint=fingerprint, **settings)
    if distributed.is_main:
        _write_outputs(out_dir, store, model, result, length=length, scaling=scaling,
                       architecture=architecture, sizes=(len(train_index), len(val_index)),
                       world=distributed.world, label_smoothing=settings.get("label_smoothing"))
    return result


def _check_settings(store: EncodedStore, settings: dict) -> None:
    monitor = settings.get("monitor", "val_loss")
    if monitor not in MONITORS[store.task]:
        raise BioseqError(f"monitor '{monitor}' does not apply to a {store.task} task "
                          f"(choose from {', '.join(MONITORS[store.task])})")
    if monitor in ("q3", "q8") and monitor != f"q{len(store.label_names)}":
        raise BioseqError(f"monitor '{monitor}' needs {monitor[1]} classes; the data have "
                          f"{len(store.label_names)} (use accuracy)")
    if settings.get("label_smoothing") and store.task == "regression":
        raise BioseqError("label_smoothing applies to classification, not a regression task")
    if settings.get("rc_augment") and not store.alphabet.has_strands:
        raise BioseqError(f"rc_augment needs DNA/RNA, not {store.alphabet.name}")


def _write_outputs(out_dir: Path, store: EncodedStore, model: torch.nn.Module,
                   result: FitResult, *, length: LengthPolicy, scaling: dict | None,
                   architecture: str, sizes: tuple[int, int], world: int,
                   label_smoothing: float | None) -> None:
    """model.pt and train.json; the resume state goes once they are written."""
    summary = {"dataset": store.meta["dataset"], "architecture": architecture,
               "best_epoch": result.best_epoch, "monitor": result.monitor,
               "best_score": result.best_score, "epochs_run": len(result.history),
               "seconds": round(result.seconds, 2), "device": result.device,
               "processes": world, "parameters": sum(p.numel() for p in model.parameters()),
               "train_records": sizes[0], "val_records": sizes[1]}
    if label_smoothing:  # history's train_loss is on smoothed targets: figures must say so
        summary["label_smoothing"] = label_smoothing
    save_checkpoint(out_dir / "model.pt", model, alphabet=store.meta["alphabet"],
                    encoding=EncodingPolicy(**store.meta["encoding"]), length=length,
                    task=store.task, label_names=store.label_names, target_scaling=scaling,
                    training=summary)
    write_text_atomic(out_dir / "train.json", json.dumps(summary, indent=2) + "\n")
    (out_dir / RESUME_FILE).unlink(missing_ok=True)
