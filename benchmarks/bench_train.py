"""Training and inference throughput: bioseq's tuned path vs a naive PyTorch loop.

For every architecture in bioseq.models.REGISTRY (default hyper-parameters, binary output)
on random 1,000-bp DNA in batches of 256, from the same initial weights:

- tuned: bioseq.training._train_epoch (the step fit() runs) fed by BatchLoader from the
  compact uint8 store (gathered on the GPU when it fits there, else pinned host memory with
  non-blocking copies), one-hot expansion on the device, bf16 autocast, TF32 and cuDNN
  autotuning on CUDA; inference through bioseq.predict.predict_scores.
- naive: a per-sample Dataset building float32 one-hot tensors on the CPU,
  DataLoader(num_workers=0, pin_memory=False), blocking copies, fp32 throughout.

On CUDA it also samples GPU utilisation with nvidia-smi during the tuned training run and
times 200-bp CNN inference at batch 4,096 (the issue's 100,000 sequences/s target).

    python benchmarks/bench_train.py [--small] [--threads N] [--device cuda] [--compile]
"""

from __future__ import annotations

import math
import subprocess
import threading
import time

import numpy as np
import torch
import torch.nn.functional as F
from _common import OneHotDataset, machine_info, parse_args, print_table, random_tokens
from torch.utils.data import DataLoader

from bioseq.alphabets import get_alphabet
from bioseq.data import BatchLoader, TokenExpander
from bioseq.models import REGISTRY, build_model
from bioseq.predict import predict_scores
from bioseq.training import _train_epoch, _tune_for_device

WIDTH, BATCH = 1000, 256
SIZES = {"small": {"samples": 64, "batch": 32, "width": 200, "warmup": 1},
         "cpu": {"samples": 512, "batch": BATCH, "width": WIDTH, "warmup": 1},
         "cuda": {"samples": 32768, "batch": BATCH, "width": WIDTH, "warmup": 8}}


def options(parser) -> None:
    parser.add_argument("--device", default=None, help="cpu or cuda (default: CUDA if present)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the tuned model")
    parser.add_argument("--architectures", default=",".join(sorted(REGISTRY)))
    parser.add_argument("--batch", type=int, default=None,
                        help="batch size (default 256); the default transformer at 1,000 bp "
                             "needs ~24 GB at 256 on a CPU, where attention is materialised")
    parser.add_argument("--samples", type=int, default=None)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def tuned_loader(tokens: np.ndarray, labels: np.ndarray, batch: int, device: torch.device,
                 shuffle: bool) -> BatchLoader:
    n = len(tokens)
    return BatchLoader(tokens, np.zeros(n, np.int32), np.full(n, tokens.shape[1], np.int32),
                       np.arange(n), targets=labels, batch_size=batch, shuffle=shuffle,
                       seed=0, device=device, resident=device.type == "cuda")


def tuned_train(model, tokens, labels, size, device, compile_model: bool) -> float:
    """Seconds of one epoch through bioseq's training step (after `warmup` batches)."""
    expander = TokenExpander(get_alphabet("dna"), ambiguous="soft", device=device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    trained = torch.compile(model) if compile_model else model
    _tune_for_device(device, fixed_shapes=True)
    step = dict(task="binary", weights=None, grad_clip=1.0, rc_augment=False,
                generator=torch.Generator(), world=1,
                autocast=dict(device_type=device.type, dtype=torch.bfloat16,
                              enabled=device.type == "cuda"))
    warm = size["warmup"] * size["batch"]
    _train_epoch(trained, tuned_loader(tokens[:warm], labels[:warm], size["batch"], device,
                                       True), expander, optimizer, scheduler, **step)
    loader = tuned_loader(tokens, labels, size["batch"], device, True)
    sync(device)
    started = time.perf_counter()
    _train_epoch(trained, loader, expander, optimizer, scheduler, **step)  # ends in .item()
    return time.perf_counter() - started


def naive_batches(tokens, labels, batch: int, device: torch.device):
    loader = DataLoader(OneHotDataset(tokens, labels), batch_size=batch, shuffle=True,
                        num_workers=0, pin_memory=False,
                        generator=torch.Generator().manual_seed(0))
    for x, y in loader:
        yield x.to(device), y.to(device)


def naive_train(model, tokens, labels, size, device) -> float:
    """Seconds of one epoch the naive way (after `warmup` batches)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    model.train()
    warm = size["warmup"] * size["batch"]
    started = None
    for k, (x, y) in enumerate(naive_batches(np.concatenate([tokens[:warm], tokens]),
                                             np.concatenate([labels[:warm], labels]),
                                             size["batch"], device)):
        if k == size["warmup"]:
            sync(device)
            started = time.perf_counter()
        mask = torch.ones(len(x), x.shape[2], dtype=torch.bool, device=device)
        loss = F.binary_cross_entropy_with_logits(model(x, mask)[:, 0], y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        loss.item()  # a per-step host sync, as a typical loop logs its loss
    sync(device)
    return time.perf_counter() - started


@torch.no_grad()
def naive_predict(model, tokens, labels, batch: int, device: torch.device) -> float:
    model.eval()
    started = time.perf_counter()
    for x, _ in naive_batches(tokens, labels, batch, device):
        torch.sigmoid(model(x, torch.ones(len(x), x.shape[2], dtype=torch.bool,
                                          device=device))).cpu()
    return time.perf_counter() - started


def tuned_predict(model, tokens, labels, batch: int, device: torch.device) -> float:
    expander = TokenExpander(get_alphabet("dna"), ambiguous="soft", device=device)
    predict_scores(model, tuned_loader(tokens[:batch], labels[:batch], batch, device, False),
                   expander, task="binary")  # warm-up
    sync(device)
    started = time.perf_counter()
    predict_scores(model, tuned_loader(tokens, labels, batch, device, False), expander,
                   task="binary")
    return time.perf_counter() - started


class GpuBusy:
    """Mean `utilization.gpu` that nvidia-smi reports every 100 ms while active."""

    def __init__(self, device: torch.device):
        self.samples: list[float] = []
        self.enabled = device.type == "cuda"
        self.index = device.index or 0

    def __enter__(self) -> GpuBusy:
        if self.enabled:
            self.process = subprocess.Popen(
                ["nvidia-smi", f"--id={self.index}", "--query-gpu=utilization.gpu",
                 "--format=csv,noheader,nounits", "-lms", "100"],
                stdout=subprocess.PIPE, text=True)
            self.reader = threading.Thread(target=self._read, daemon=True)
            self.reader.start()
        return self

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.strip().isdigit():
                self.samples.append(float(line))

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.process.terminate()
            self.process.wait()

    @property
    def mean(self) -> float | None:
        # the first samples straddle the start; nvidia-smi's own window is ~100 ms-1 s
        kept = self.samples[2:] if len(self.samples) > 4 else self.samples
        return sum(kept) / len(kept) if kept else None


def measure(arch: str, tokens, labels, size: dict, device, compile_model: bool) -> list:
    """[architecture, params, tuned train/s, naive train/s, ratio, GPU busy %,
    tuned infer/s, naive infer/s, ratio] for one architecture."""
    torch.manual_seed(0)
    model = build_model(arch, in_channels=4, n_outputs=1).to(device)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    n = len(tokens)
    with GpuBusy(device) as busy:
        tuned = tuned_train(model, tokens, labels, size, device, compile_model)
    model.load_state_dict(state)
    naive = naive_train(model, tokens, labels, size, device)
    infer_tuned = tuned_predict(model, tokens, labels, size["batch"], device)
    infer_naive = naive_predict(model, tokens, labels, size["batch"], device)
    params = sum(p.numel() for p in model.parameters())
    return [arch, params, n / tuned, n / naive, naive / tuned, busy.mean,
            n / infer_tuned, n / infer_naive, infer_naive / infer_tuned]


def cnn_200bp_inference(device: torch.device, samples: int, batch: int) -> tuple[float, float]:
    """Sequences/s of the default CNN on 200-bp windows: (tuned, naive)."""
    torch.manual_seed(0)
    model = build_model("cnn", in_channels=4, n_outputs=1).to(device)
    tokens, labels = random_tokens(samples, 200, seed=1)
    tuned = tuned_predict(model, tokens, labels.astype(np.float32), batch, device)
    naive = naive_predict(model, tokens, labels.astype(np.float32), batch, device)
    return samples / tuned, samples / naive


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], options)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    size = dict(SIZES["small" if args.small else device.type])
    size.update({k: v for k, v in (("batch", args.batch), ("samples", args.samples)) if v})
    print(f"bench_train: {size['samples']:,} x {size['width']}-bp DNA per architecture, "
          f"batch {size['batch']}, {device.type}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    print(machine_info())
    tokens, labels = random_tokens(size["samples"], size["width"])
    labels = labels.astype(np.float32)
    rows = []
    for arch in args.architectures.split(","):
        rows.append(measure(arch, tokens, labels, size, device, args.compile))
        print(f"  {arch}: done", flush=True)
    print()
    print_table(["architecture", "params", "train/s tuned", "train/s naive", "ratio",
                 "GPU busy %", "infer/s tuned", "infer/s naive", "ratio"], rows)
    geo = math.exp(sum(math.log(row[4]) for row in rows) / len(rows))
    print(f"\nratio: {geo:.2f}x  (tuned vs naive training samples/s, geometric mean over "
          f"{len(rows)} architectures)")
    samples, batch = (2048, 256) if args.small or device.type == "cpu" else (262144, 4096)
    tuned, naive = cnn_200bp_inference(device, samples, batch)
    print(f"cnn inference on 200-bp windows, batch {batch}: {tuned:,.0f} sequences/s tuned, "
          f"{naive:,.0f} naive ({tuned / naive:.2f}x)")


if __name__ == "__main__":
    main()
