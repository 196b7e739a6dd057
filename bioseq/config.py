"""Configuration as frozen dataclasses that reject unknown keys.

This is the one place in the package that turns parsed YAML (plain dicts) into typed
settings; library functions take explicit keyword arguments.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from .alphabets import get_alphabet
from .encoding import EncodingPolicy, LengthPolicy
from .errors import BioseqError
from .metrics import MONITORS
from .models import REGISTRY, build_model
from .tasks import output_kind

TASKS = ("binary", "multiclass", "multilabel", "regression", "per_residue")
SPLIT_METHODS = ("random", "homology")
SCHEDULES = ("cosine", "constant")
PRECISIONS = (None, "bf16", "fp32")  # None: bf16 autocast on CUDA only
ALL_MONITORS = tuple(dict.fromkeys(m for names in MONITORS.values() for m in names))


def _check_number(key: str, value: Any, *, integer: bool = False, low: float | None = None,
                  high: float | None = None, open_low: bool = False) -> None:
    kind = int if integer else (int, float)
    ok = isinstance(value, kind) and not isinstance(value, bool)
    ok = ok and (low is None or (value > low if open_low else value >= low))
    ok = ok and (high is None or value <= high)
    if not ok:
        bound = f"{'>' if open_low else '>='} {low}" if low is not None else ""
        bound += f" and <= {high}" if high is not None else ""
        raise BioseqError(f"{key} must be {'an integer' if integer else 'a number'} {bound}, "
                          f"not {value!r}")


@dataclass(frozen=True)
class SplitConfig:
    field: str = "split"  # header field / table column with train|val|test, used when present
    validation_field: str | None = None  # header flag moving train records to val (NetSurfP)
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 0
    method: str = "random"  # random | homology (k-mer identity clusters stay on one side)
    identity: float = 0.5  # homology: estimated identity that puts two sequences together
    kmer: int = 5  # homology: k-mer size of the identity estimate

    def __post_init__(self) -> None:
        if self.method not in SPLIT_METHODS:
            raise BioseqError(f"split method must be one of {SPLIT_METHODS}, not '{self.method}'")
        _check_number("identity", self.identity, low=0, high=1, open_low=True)
        _check_number("kmer", self.kmer, integer=True, low=2, high=12)


MAX_KMER_FEATURES = 1 << 22  # baseline columns: its coefficients stay ~100 MB
CV_SELECT = {"binary": "mcc", "multiclass": "accuracy", "multilabel": "macro_f1",
             "regression": "r2"}  # default validation metric that picks each fold's models


@dataclass(frozen=True)
class CrossValidationConfig:
    """K-fold cross-validation: every fold is the test split once; the rest is split into
    train and val (stratified), val serving early stopping and model selection only."""

    folds: int = 0  # 0: one train/val/test split, no cross-validation
    run: int | None = None  # train only the first `run` folds (quick looks, smoke tests)
    val_fraction: float = 0.1  # of each fold's training part
    seed: int = 0
    select: str | None = None  # validation metric choosing among a family's grid members
    ensemble: int = 0  # also score the mean of each fold's top-N models (by `select`)

    def __post_init__(self) -> None:
        if self.folds != 0:
            _check_number("cv.folds", self.folds, integer=True, low=2)
        if self.run is not None:
            _check_number("cv.run", self.run, integer=True, low=1, high=max(self.folds, 1))
        _check_number("cv.val_fraction", self.val_fraction, low=0, high=0.5, open_low=True)
        _check_number("cv.seed", self.seed, integer=True, low=0)
        _check_number("cv.ensemble", self.ensemble, integer=True, low=0)

    @property
    def folds_run(self) -> int:
        return self.run or self.folds


@dataclass(frozen=True)
class BaselineConfig:
    """The non-deep baseline: logistic regression on k-mer frequencies (k = 1..kmer) of
    each sequence; for per_residue, on the one-hot letters `window` residues either side."""

    kmer: int = 0  # 0: no baseline
    window: int = 7
    C: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)  # inverse regularisation, picked on val
    max_records: int = 200_000  # training rows sampled (sequences, or residues)

    def __post_init__(self) -> None:
        try:  # YAML lists reach here as tuples of strings
            object.__setattr__(self, "C", tuple(float(c) for c in self.C))
        except (TypeError, ValueError):
            raise BioseqError(f"baseline.C must be a list of numbers, not {self.C!r}") from None
        _check_number("baseline.kmer", self.kmer, integer=True, low=0, high=8)
        _check_number("baseline.window", self.window, integer=True, low=0, high=50)
        _check_number("baseline.max_records", self.max_records, integer=True, low=100)
        if not self.C:
            raise BioseqError("baseline.C needs at least one value")
        for value in self.C:
            _check_number("baseline.C", value, low=0, open_low=True)

    @property
    def enabled(self) -> bool:
        return self.kmer > 0


# the keys that say where a data set's records and labels come from, and how they are named
INPUT_FILES = ("fasta", "class_fastas", "labels_table", "residue_labels", "residue_mask",
               "residue_table")
INPUT_NAMES = ("id_column", "label_field", "label_columns", "sequence_column", "mask_column")
# folders beside the model folders, and the rows of a cross-validation summary
RESERVED_MODEL_NAMES = ("encoded", "test_sets", "cv", "baselines", "ensemble", "best",
                        "kmer_baseline")


@dataclass(frozen=True)
class TestSetConfig:
    """An extra, external test set of a data set (e.g. CB513): read like the data set, every
    record held out; training records with the same sequence are dropped from training."""

    fasta: tuple[str, ...] = ()
    class_fastas: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    labels_table: str | None = None
    residue_labels: str | None = None
    residue_mask: str | None = None
    residue_table: str | None = None
    # column and field names: None means the data set's own
    id_column: str | None = None
    label_field: str | None = None
    label_columns: tuple[str, ...] | None = None
    sequence_column: str | None = None
    mask_column: str | None = None


@dataclass(frozen=True)
class DatasetConfig:
    name: str
    alphabet: str = "dna"
    task: str = "multiclass"
    fasta: tuple[str, ...] = ()  # FASTA file(s); labels from headers or `labels_table`
    class_fastas: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # class -> files
    labels_table: str | None = None  # TSV/CSV with `id_column` and label column(s)
    id_column: str = "id"
    label_field: str = "label"  # header key or table column (binary/multiclass)
    label_columns: tuple[str, ...] = ()  # table columns (multilabel/regression)
    classes: tuple[str, ...] = ()  # class order; binary: the last one is positive
    # per_residue: a label FASTA (one letter per residue; optional mask FASTA of 1/0) with
    # the same IDs as `fasta`, or a table with id, sequence, label string (`label_field`)
    residue_labels: str | None = None
    residue_mask: str | None = None
    residue_table: str | None = None
    sequence_column: str = "sequence"
    mask_column: str | None = None
    # genomic windows: BED intervals (one file, or one per class) on a reference FASTA,
    # cut to length.length around each interval by length.anchor
    bed: tuple[str, ...] = ()
    class_beds: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    reference: str | None = None  # FASTA: plain, or bgzip with .fai and .gzi
    bed_label_column: int | None = None  # 1-based BED column with the label (e.g. 4 or 5)
    length: LengthPolicy = LengthPolicy()
    encoding: EncodingPolicy = EncodingPolicy()
    split: SplitConfig = SplitConfig()
    predict: tuple[str, ...] = ()  # FASTA file(s) to predict; default: the inputs
    models: tuple[str, ...] = ()  # models trained on this data set; default: all
    test_sets: Mapping[str, TestSetConfig] = field(default_factory=dict)
    record_ids: str = "header"  # header: the FASTA ID; numbered: file#record number
    cv: CrossValidationConfig = CrossValidationConfig()
    baseline: BaselineConfig = BaselineConfig()

    def __post_init__(self) -> None:
        where = f"dataset '{self.name}'"
        if self.task not in TASKS:
            raise BioseqError(f"{where}: task must be one of {TASKS}, not '{self.task}'")
        self._check_cross_validation(where)
        if self.baseline.enabled and self.task in ("multilabel", "regression"):
            raise BioseqError(f"{where}: the k-mer baseline classifies; a {self.task} task "
                              "has none (drop baseline)")
        size = get_alphabet(self.alphabet).size
        if sum(size ** k for k in range(1, self.baseline.kmer + 1)) > MAX_KMER_FEATURES:
            raise BioseqError(f"{where}: baseline.kmer {self.baseline.kmer} makes more than "
                              f"4 M k-mer features for {self.alphabet}; lower it")
        if self.task == "per_residue" and self.baseline.kmer > 1:
            raise BioseqError(f"{where}: the per-residue baseline reads the one-hot letters of "
                              "a window around each residue; give baseline: {kmer: 1, window: N}")
        if self.record_ids not in ("header", "numbered"):
            raise BioseqError(f"{where}: record_ids must be header or numbered, "
                              f"not '{self.record_ids}'")
        if self.record_ids == "numbered" and (self.labels_table or self.task == "per_residue"
                                              or self.bed or self.class_beds):
            raise BioseqError(f"{where}: record_ids numbered is for FASTA inputs whose labels "
                              "come with the file or header (a table or label FASTA matches "
                              "records by ID)")
        if self.task == "per_residue":
            self._check_residue_inputs(where)
            return
        if self.length.overlap is not None:
            raise BioseqError(f"{where}: length.overlap is for per_residue tasks")
        if self.split.validation_field:
            raise BioseqError(f"{where}: split.validation_field is for per_residue FASTA "
                              "inputs; give val in the split field")
        residue = [k for k in ("residue_labels", "residue_mask", "residue_table", "mask_column")
                   if getattr(self, k)]
        if residue:
            raise BioseqError(f"{where}: {', '.join(residue)} need task per_residue")
        sources = [k for k in ("fasta", "class_fastas", "bed", "class_beds") if getattr(self, k)]
        if len(sources) != 1:
            raise BioseqError(f"{where}: give exactly one of 'fasta', 'class_fastas', 'bed' or "
                              "'class_beds'")
        self._check_genome_inputs(where)
        if (self.class_fastas or self.class_beds) and self.task not in ("binary", "multiclass"):
            raise BioseqError(f"{where}: one file per class needs task binary or multiclass")
        if self.task in ("multilabel", "regression") and not self.label_columns:
            raise BioseqError(f"{where}: task {self.task} needs 'label_columns'")
        if len(set(self.classes)) != len(self.classes):
            raise BioseqError(f"{where}: 'classes' lists a class twice: {list(self.classes)}")
        if self.label_columns and not self.labels_table:
            raise BioseqError(f"{where}: 'label_columns' needs 'labels_table'")

    def _check_cross_validation(self, where: str) -> None:
        if not self.cv.folds:
            return
        if self.task == "per_residue":
            raise BioseqError(f"{where}: cv is for per-sequence tasks; per_residue data sets "
                              "are scored on their test split and test_sets")
        if self.test_sets or self.predict:
            raise BioseqError(f"{where}: a cross-validated data set trains one model per fold "
                              "and scores each on its fold; drop test_sets/predict, or cv")
        if self.cv.select is not None and self.cv.select not in MONITORS[self.task]:
            choices = ", ".join(MONITORS[self.task][1:])
            raise BioseqError(f"{where}: cv.select '{self.cv.select}' does not apply to a "
                              f"{self.task} task (choose from {choices})")
        if self.cv.select == "val_loss":
            raise BioseqError(f"{where}: cv.select needs a metric such as "
                              f"{CV_SELECT[self.task]}, not val_loss")

    @property
    def cv_select(self) -> str:
        """The validation metric that ranks models within a fold."""
        return self.cv.select or CV_SELECT[self.task]

    def _check_genome_inputs(self, where: str) -> None:
        genomic = bool(self.bed or self.class_beds)
        if genomic and not self.reference:
            raise BioseqError(f"{where}: BED intervals need 'reference' (the genome FASTA)")
        if not genomic and (self.reference or self.bed_label_column is not None):
            raise BioseqError(f"{where}: 'reference' and 'bed_label_column' go with 'bed' or "
                              "'class_beds'")
        if genomic and self.length.length is None:
            raise BioseqError(f"{where}: BED intervals become fixed windows; give "
                              "length: {length: N, anchor: center|left|right}")
        if self.bed_label_column is not None:
            _check_number("bed_label_column", self.bed_label_column, integer=True, low=4)
        if self.bed and self.task in ("binary", "multiclass") and not (
                self.bed_label_column or self.labels_table):
            raise BioseqError(f"{where}: labels of 'bed' intervals come from "
                              "'bed_label_column', 'labels_table' or 'class_beds'")

    def _check_residue_inputs(self, where: str) -> None:
        if bool(self.fasta) == bool(self.residue_table):
            raise BioseqError(f"{where}: per_residue needs 'fasta' with 'residue_labels', or "
                              "'residue_table'")
        if self.fasta and (len(self.fasta) != 1 or not self.residue_labels):
            raise BioseqError(f"{where}: per_residue 'fasta' is one sequence FASTA, with "
                              "'residue_labels' (label FASTA) beside it")
        if self.residue_table and (self.residue_labels or self.residue_mask):
            raise BioseqError(f"{where}: 'residue_table' holds the labels; drop "
                              "'residue_labels'/'residue_mask'")
        if self.fasta and self.mask_column:
            raise BioseqError(f"{where}: 'mask_column' is for 'residue_table'; a FASTA layout "
                              "takes 'residue_mask'")
        if self.residue_table and self.split.validation_field:
            raise BioseqError(f"{where}: split.validation_field reads FASTA headers; a table "
                              "gives val in its split column")
        long = [c for c in self.classes if len(c) != 1]
        if long:
            raise BioseqError(f"{where}: per-residue classes are single letters, not "
                              f"'{long[0]}'")
        for key in ("class_fastas", "labels_table", "label_columns", "bed", "class_beds",
                    "reference"):
            if getattr(self, key):
                raise BioseqError(f"{where}: '{key}' does not apply to per_residue")
        if self.length.length is not None or self.length.truncate:
            raise BioseqError(f"{where}: per_residue data are never cut to windows or "
                              "truncated; use length: {max_length: N} to predict proteins "
                              "longer than N in overlapping windows")

    @property
    def inputs(self) -> tuple[str, ...]:
        """Every sequence file the data set reads, in order."""
        if self.residue_table:
            return (self.residue_table,)
        per_class = self.class_fastas or self.class_beds
        return (self.fasta or self.bed
                or tuple(p for paths in per_class.values() for p in paths))

    @property
    def input_files(self) -> tuple[str, ...]:
        """Every file the data set reads: sequences, label tables and label/mask FASTAs."""
        extra = (self.labels_table, self.residue_labels, self.residue_mask, self.reference)
        return self.inputs + tuple(p for p in extra if p)

    def test_set(self, name: str) -> DatasetConfig:
        """The data set as read from test set `name` (its own inputs, this encoding)."""
        test = self.test_sets[name]
        inputs = {key: getattr(test, key) for key in INPUT_FILES}
        names = {key: getattr(self, key) if getattr(test, key) is None else getattr(test, key)
                 for key in INPUT_NAMES}
        if test.residue_table is None:  # a FASTA triple has no mask column
            names["mask_column"] = None
        genomic = {"bed": (), "class_beds": {}, "reference": None, "bed_label_column": None}
        return dataclasses.replace(self, name=f"{self.name}.{name}", **inputs, **names,
                                   **genomic, test_sets={}, predict=(),
                                   split=SplitConfig(field=self.split.field),
                                   cv=CrossValidationConfig(), record_ids="header")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2
    schedule: str = "cosine"  # cosine (with warmup) | constant
    warmup_fraction: float = 0.05
    grad_clip: float | None = 1.0
    class_weights: bool = False  # inverse-frequency weights in the loss
    monitor: str = "val_loss"  # val_loss or a metric name such as accuracy, mcc, auroc
    patience: int = 8
    seed: int = 0
    rc_augment: bool = False  # random reverse complement of DNA training batches
    ema_decay: float | None = None  # validate and keep an exponential average of the weights
    label_smoothing: float | None = None  # classification targets pulled towards uniform
    compile: bool = False  # torch.compile the model (pays off on GPUs for long runs)
    precision: str | None = None  # None: bf16 autocast on CUDA, fp32 on CPU; or bf16 / fp32

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise BioseqError(f"schedule must be one of {SCHEDULES}, not '{self.schedule}'")
        if self.monitor not in ALL_MONITORS:
            raise BioseqError(f"monitor must be one of {', '.join(ALL_MONITORS)}, "
                              f"not '{self.monitor}'")
        _check_number("epochs", self.epochs, integer=True, low=1)
        _check_number("batch_size", self.batch_size, integer=True, low=1)
        _check_number("patience", self.patience, integer=True, low=1)
        _check_number("seed", self.seed, integer=True, low=0)
        _check_number("lr", self.lr, low=0, open_low=True)
        _check_number("weight_decay", self.weight_decay, low=0)
        _check_number("warmup_fraction", self.warmup_fraction, low=0, high=1)
        if self.grad_clip is not None:
            _check_number("grad_clip", self.grad_clip, low=0, open_low=True)
        if self.ema_decay is not None:
            _check_number("ema_decay", self.ema_decay, low=0, high=0.99999, open_low=True)
        if self.label_smoothing is not None:
            _check_number("label_smoothing", self.label_smoothing, low=0, high=0.5,
                          open_low=True)  # 0 would retrain for nothing: leave it unset
        if self.precision not in PRECISIONS:
            raise BioseqError(f"precision must be one of {', '.join(map(str, PRECISIONS))}, "
                              f"not '{self.precision}'")


@dataclass(frozen=True)
class ModelConfig:
    name: str
    architecture: str
    params: Mapping[str, Any] = field(default_factory=dict)
    train: TrainConfig = TrainConfig()

    def __post_init__(self) -> None:
        if self.architecture not in REGISTRY:
            raise BioseqError(f"model '{self.name}': unknown architecture '{self.architecture}' "
                              f"(choose from {', '.join(sorted(REGISTRY))})")


GRID_SEPARATOR = ".g"  # grid member names: cnn.g1, cnn.g2, ...
MAX_GRID = 256
TRAIN_KEYS = frozenset(f.name for f in dataclasses.fields(TrainConfig))
# training keys added after results existed: left unset (None), they are kept out of resume
# fingerprints and of the train rule's params, so earlier runs still resume and are not
# retrained by Snakemake's params trigger
LATER_TRAIN_KEYS = ("ema_decay", "precision", "label_smoothing")


def without_unset_later_keys(settings: Mapping[str, Any],
                             shared: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`settings` less the LATER_TRAIN_KEYS whose value is None; with `shared` (the
    `training` section that a model's `train` overrides) a None stays where it overrides a
    shared value, since it then sets the key back to its default."""
    shared = shared or {}
    return {k: v for k, v in settings.items()
            if not (k in LATER_TRAIN_KEYS and v is None and shared.get(k) is None)}


class ModelGrid(NamedTuple):
    """Model entries with every `grid` expanded into one plain entry per combination."""

    entries: dict[str, dict]  # name -> model entry without `grid`
    family: dict[str, str]  # name -> the config entry it comes from
    settings: dict[str, dict]  # name -> the grid values it takes ({} outside a grid)


def expand_models(models: Mapping[str, Any]) -> ModelGrid:
    """`cnn: {..., grid: {dropout: [0.2, 0.4], lr: [1e-3, 3e-3]}}` becomes cnn.g1 ... cnn.g4,
    one per combination (in the order the grid lists them, last key fastest). Grid keys
    are training keys (`lr`, `batch_size`, ...) or architecture `params`."""
    entries, family, settings = {}, {}, {}
    for name, entry in models.items():
        entry = dict(entry) if isinstance(entry, Mapping) else entry
        grid = entry.pop("grid", None) if isinstance(entry, dict) else None
        if not grid:
            entries[name], family[name], settings[name] = entry, name, {}
            continue
        where = f"model '{name}'.grid"
        if not isinstance(grid, Mapping) or not all(
                isinstance(v, list) and v for v in grid.values()):
            raise BioseqError(f"{where}: expected a mapping of key -> non-empty list of values")
        combinations = list(itertools.product(*grid.values()))
        if len(combinations) > MAX_GRID:
            raise BioseqError(f"{where}: {len(combinations)} combinations; at most {MAX_GRID}")
        for number, values in enumerate(combinations, start=1):
            member = f"{name}{GRID_SEPARATOR}{number}"
            if member in models or member in entries:
                raise BioseqError(f"{where}: member name '{member}' is also a model's name; "
                                  "rename that model")
            chosen = dict(zip(grid, values, strict=True))
            params = {**(entry.get("params") or {})}
            train = {**(entry.get("train") or {})}
            for key, value in chosen.items():
                (train if key in TRAIN_KEYS else params)[key] = value
            entries[member] = {**entry, "params": params, "train": train}
            family[member], settings[member] = name, chosen
    return ModelGrid(entries, family, settings)


def from_dict(cls: type, data: Mapping[str, Any] | None, *, where: str, **extra: Any):
    """Build dataclass `cls` from a mapping, refusing keys it does not know."""
    if data is not None and not isinstance(data, Mapping):
        raise BioseqError(f"{where}: expected a mapping, not {data!r}")
    data = dict(data or {})
    known = {f.name for f in dataclasses.fields(cls)} - set(extra)
    unknown = sorted(set(data) - known)
    if unknown:
        raise BioseqError(
            f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        nested = hints[key] if dataclasses.is_dataclass(hints[key]) else None
        if nested is not None and value is None:  # an empty YAML section means defaults
            value = {}
        if nested is not None and not isinstance(value, nested):
            if not isinstance(value, Mapping):
                raise BioseqError(f"{where}.{key}: expected a mapping, not {value!r}")
            value = from_dict(nested, value, where=f"{where}.{key}")
        elif typing.get_origin(hints[key]) is tuple:  # one path/name or a list of them
            value = _as_tuple(value)
        elif key == "test_sets":
            if not isinstance(value, Mapping):
                raise BioseqError(f"{where}.test_sets: expected a mapping of name -> inputs, "
                                  f"not {value!r}")
            value = {str(k): from_dict(TestSetConfig, v, where=f"{where}.test_sets.{k}")
                     for k, v in value.items()}
        elif key == "contig_aliases" and isinstance(value, Mapping):
            value = {str(k): str(v) for k, v in value.items()}
        elif key in ("class_fastas", "class_beds"):
            if not isinstance(value, Mapping):
                raise BioseqError(f"{where}.{key}: expected a mapping of class -> "
                                  f"file(s), not {value!r}")
            value = {str(k): _as_tuple(v) for k, v in value.items()}
        kwargs[key] = value
    try:
        return cls(**kwargs, **extra)
    except TypeError as err:
        raise BioseqError(f"{where}: {err}") from None
    except BioseqError as err:  # from __post_init__: say where, once
        if str(err).startswith(where):
            raise
        raise BioseqError(f"{where}: {err}") from None


def dataset_config(name: str, data: Mapping[str, Any]) -> DatasetConfig:
    return from_dict(DatasetConfig, data, where=f"dataset '{name}'", name=name)


def model_config(name: str, data: Mapping[str, Any], defaults: Mapping[str, Any] | None = None):
    """A model entry; its `train` keys override the workflow-wide `training` defaults."""
    data = dict(data)
    data["train"] = {**(defaults or {}), **(data.get("train") or {})}
    return from_dict(ModelConfig, data, where=f"model '{name}'", name=name)


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise BioseqError("no such file", path=str(path))
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise BioseqError(f"invalid YAML ({' '.join(str(err).split())})", path=str(path)) from None
    if not isinstance(data, dict):
        raise BioseqError("expected a mapping at the top level", path=str(path))
    return data


def _as_tuple(value: Any) -> tuple:
    if value is None:
        return ()
    if isinstance(value, (str, int, float)):
        return (str(value),)
    return tuple(str(v) for v in value)


SLURM_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")  # partition, account and GPU model names


@dataclass(frozen=True)
class ResourcesConfig:
    """What jobs ask a scheduler for. Local runs use only `threads` (and CUDA when
    present); the SLURM profile turns the rest into sbatch options."""

    threads: int = 2  # CPU threads per training/evaluation/prediction job
    gpu: int = 1  # GPUs a training job asks for; above 1 it trains under torchrun
    predict_gpu: int = 1  # GPUs each model-inference job (evaluate, predict, variants) asks for
    gpu_model: str | None = None  # e.g. a100: --gpus=a100:N; None: any GPU
    mem_mb: int = 8000  # per training job
    runtime: int = 120  # minutes per training job
    partition: str | None = None  # SLURM partition of every job; None: the cluster's default
    gpu_partition: str | None = None  # partition of the jobs asking for GPUs; None: partition
    account: str | None = None  # SLURM account (sbatch -A); None: the user's default
    predict_shards: int = 1  # prediction jobs per data set and model (contiguous record runs)

    def __post_init__(self) -> None:
        for key, low in (("threads", 1), ("gpu", 0), ("predict_gpu", 0), ("mem_mb", 100),
                         ("runtime", 1), ("predict_shards", 1)):
            _check_number(key, getattr(self, key), integer=True, low=low)
        for key in ("gpu_model", "partition", "gpu_partition", "account"):
            value = getattr(self, key)
            if value is not None and not (isinstance(value, str) and SLURM_NAME.match(value)):
                raise BioseqError(f"{key} must be a name of letters, digits, '_', '.' or '-', "
                                  f"not {value!r}")


@dataclass(frozen=True)
class VariantEffectConfig:
    """The workflow's `variant_effect` section: a VCF scored by trained DNA models."""

    vcf: str
    reference: str  # FASTA: plain, or bgzip with .fai and .gzi
    models: tuple[str, ...]  # "dataset/model" pairs trained by this workflow
    contig_aliases: Mapping[str, str] = field(default_factory=dict)  # VCF name -> FASTA name
    ref_mismatch: str = "skip"  # skip | score
    rc_average: bool = False
    window: int | None = None  # for models that pad to the longest sequence
    epsilon: float = 1e-6  # probabilities clipped to [epsilon, 1 - epsilon] for log_odds
    ism_regions: tuple[str, ...] = ()  # contig:start-end, mutated in silico by each model

    def __post_init__(self) -> None:
        where = "variant_effect"
        if self.ref_mismatch not in ("skip", "score"):
            raise BioseqError(f"{where}: ref_mismatch must be skip or score, "
                              f"not '{self.ref_mismatch}'")
        if not self.models:
            raise BioseqError(f"{where}: models must name at least one dataset/model pair")
        bad = [m for m in self.models if m.count("/") != 1]
        if bad:
            raise BioseqError(f"{where}.models: '{bad[0]}' is not a dataset/model pair")
        if not isinstance(self.contig_aliases, Mapping):
            raise BioseqError(f"{where}.contig_aliases: expected a mapping VCF name -> "
                              f"FASTA name, not {self.contig_aliases!r}")
        if self.window is not None:
            _check_number("variant_effect.window", self.window, integer=True, low=1)
        _check_number("variant_effect.epsilon", self.epsilon, low=0, high=0.49, open_low=True)

    def pairs(self) -> list[tuple[str, str]]:
        return [tuple(m.split("/")) for m in self.models]


def region_slug(region: str) -> str:
    """A folder name for an ISM region (`20:1,000-1,060` -> `20_1000-1060`)."""
    return region.replace(",", "").replace(":", "_")


def _check_variant_effect(section: VariantEffectConfig, datasets: list[DatasetConfig],
                          models: Mapping[str, Any]) -> None:
    by_name = {d.name: d for d in datasets}
    for dataset_name, model_name in section.pairs():
        dataset = by_name.get(dataset_name)
        if dataset is None or model_name not in dataset_models(dataset, models):
            raise BioseqError(f"variant_effect.models: '{dataset_name}/{model_name}' is not a "
                              "dataset/model pair this workflow trains")
        if dataset.cv.folds:
            raise BioseqError(f"variant_effect.models: '{dataset_name}' is cross-validated "
                              "(one model per fold); score variants with a model trained on "
                              "one split")
        if dataset.alphabet != "dna" or dataset.task == "per_residue":
            raise BioseqError(f"variant_effect.models: '{dataset_name}' is a "
                              f"{dataset.alphabet} {dataset.task} data set; variant effects "
                              "need a per-sequence DNA model")


@dataclass(frozen=True)
class WorkflowConfig:
    """The whole config.yaml, checked before the workflow starts."""

    datasets: Mapping[str, Any]
    models: Mapping[str, Any]
    training: Mapping[str, Any] = field(default_factory=dict)
    resources: ResourcesConfig = ResourcesConfig()
    report: str = "results/report.html"
    variant_effect: Mapping[str, Any] | None = None  # see VariantEffectConfig
    accuracy: Mapping[str, Any] | None = None  # benchmarks/accuracy: published numbers shown


def check_workflow_config(config: Mapping[str, Any]) -> WorkflowConfig:
    """Every section typed and checked; the first problem is one clear line."""
    workflow = from_dict(WorkflowConfig, config, where="config")
    if not workflow.datasets or not workflow.models:
        raise BioseqError("config: 'datasets' and 'models' must each name at least one entry")
    from_dict(TrainConfig, workflow.training, where="config.training")
    datasets = [dataset_config(name, entry) for name, entry in workflow.datasets.items()]
    grid = expand_models(workflow.models)
    models = [model_config(name, entry, workflow.training)
              for name, entry in grid.entries.items()]
    reserved = [m for m in grid.entries if m in RESERVED_MODEL_NAMES]
    if reserved:
        raise BioseqError(f"model name '{reserved[0]}' is taken by the results layout; "
                          "choose another")
    for dataset in datasets:
        unknown = [m for m in dataset.models if m not in workflow.models]
        if unknown:
            raise BioseqError(f"dataset '{dataset.name}'.models: no model named "
                              f"'{unknown[0]}' (have: {', '.join(workflow.models)})")
        for name in dataset.test_sets:
            dataset.test_set(name)  # its inputs must make a valid data set too
    _check_models_build(datasets, models, grid.family)
    if workflow.variant_effect is not None:
        _check_variant_effect(variant_effect_config(workflow.variant_effect), datasets,
                              workflow.models)
    return workflow


def variant_effect_config(data: Mapping[str, Any]) -> VariantEffectConfig:
    return from_dict(VariantEffectConfig, data, where="variant_effect")


def dataset_models(dataset: DatasetConfig, models: Mapping[str, Any]) -> list[str]:
    """The model names trained on `dataset`, in config order, grids expanded (a data set's
    `models` list names config entries; a grid entry brings all its members)."""
    family = expand_models(models).family
    return [m for m in family if not dataset.models or family[m] in dataset.models]


def _check_models_build(datasets: list[DatasetConfig], models: list[ModelConfig],
                        family: Mapping[str, str]) -> None:
    """Build every dataset x model pair once (tiny, on the CPU) so that bad
    hyper-parameters stop the workflow before any job runs."""
    for dataset in datasets:
        size = get_alphabet(dataset.alphabet).size
        for model in models:
            if dataset.models and family[model.name] not in dataset.models:
                continue
            try:
                build_model(model.architecture, in_channels=size, n_outputs=2,
                            input_length=dataset.length.length,
                            output=output_kind(dataset.task), **model.params)
            except BioseqError as err:
                raise BioseqError(
                    f"model '{model.name}' on dataset '{dataset.name}': {err}") from None
