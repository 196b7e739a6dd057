import dataclasses
import os
import re
import sys

from snakemake.utils import validate

from bioseq.cluster import check_slurm_requests, job_request
from bioseq.config import (
    check_workflow_config,
    dataset_config,
    dataset_models,
    expand_models,
    region_slug,
    variant_effect_config,
    without_unset_later_keys,
)
from bioseq.errors import BioseqError

# bioseq's own check first: it names the first bad key in one line; the schema then
# documents every key and fills in the defaults.
try:
    check_workflow_config(config)
except BioseqError as err:
    sys.exit(f"bioseq: error: {err}")
validate(config, workflow.source_path("../schemas/config.schema.yaml"))

DATASETS = {name: dataset_config(name, entry) for name, entry in config["datasets"].items()}
MODEL_GRID = expand_models(config["models"])  # grids expanded: cnn.g1, cnn.g2, ...
MODELS = list(MODEL_GRID.entries)
RESOURCES = config["resources"]
TEST_SETS = sorted({name for d in DATASETS.values() for name in d.test_sets})
RESIDUE_DATASETS = [name for name, d in DATASETS.items() if d.task == "per_residue"]
SEQUENCE_DATASETS = [name for name in DATASETS if name not in RESIDUE_DATASETS]
CV_DATASETS = [name for name, d in DATASETS.items() if d.cv.folds]
BASELINE_DATASETS = [name for name, d in DATASETS.items() if d.baseline.enabled]
VARIANT_EFFECT = (variant_effect_config(config["variant_effect"])
                  if config.get("variant_effect") else None)
ISM_REGIONS = {region_slug(r): r for r in (VARIANT_EFFECT.ism_regions if VARIANT_EFFECT else ())}


def encoding_params(wildcards):
    """A dataset entry less the keys its store does not depend on, so adding a model, a
    prediction file or a baseline setting does not re-encode the data (and retrain it all)."""
    entry = config["datasets"][wildcards.dataset]
    return {k: v for k, v in entry.items() if k not in ("models", "predict", "baseline")}


def baseline_settings(wildcards):
    """A dataset's baseline settings as plain data, which Snakemake records (a dataclass it
    skips), so a change reruns the baseline jobs."""
    return dataclasses.asdict(DATASETS[wildcards.dataset].baseline)


def train_params(model):
    """The model entry and shared training settings a train job gets as params (keys added
    in later releases and left unset stay out, so earlier results are not retrained)."""
    entry, shared = dict(MODEL_GRID.entries[model]), config.get("training", {})
    if isinstance(entry.get("train"), dict):
        entry["train"] = without_unset_later_keys(entry["train"], shared)
    return entry, without_unset_later_keys(shared)


def slurm_resources(gpus=0):
    """A job's SLURM settings from config `resources`: partition, account and GPUs, each only
    where set, so that the profile's default-resources (or the cluster's defaults) apply
    otherwise. Rules spread it into their resources; local runs ignore these keys."""
    settings = {}
    partition = (RESOURCES["gpu_partition"] if gpus else None) or RESOURCES["partition"]
    if partition:
        settings["slurm_partition"] = partition
    if RESOURCES["account"]:
        settings["slurm_account"] = RESOURCES["account"]
    if gpus:
        settings["gpu"] = gpus  # the plugin turns it into sbatch --gpus=[model:]N
        if RESOURCES["gpu_model"]:
            settings["gpu_model"] = RESOURCES["gpu_model"]
    return settings


def slurm_preflight():
    """Under the SLURM executor, what every pending job asks for (partition, GPUs, CPUs,
    memory, time) checked against `sinfo` before anything is submitted: sbatch would
    refuse a bad request only at that job's turn, hours into a run."""
    plugin = workflow.executor_plugin
    if plugin is None or plugin.name != "slurm":
        return
    requests = [job_request(job.rule.name, job.threads, job.resources)
                for job in workflow.dag.needrun_jobs()]
    try:
        check_slurm_requests(requests)
    except BioseqError as err:
        sys.exit(f"bioseq: error: {err}")


onstart:
    slurm_preflight()


def alternatives(names):
    """A wildcard pattern matching exactly these names (none: matches nothing)."""
    return "|".join(map(re.escape, names)) or "(?!)"


wildcard_constraints:
    dataset=alternatives(DATASETS),
    model=alternatives(MODELS),
    test_set=alternatives(TEST_SETS),
    region=alternatives(ISM_REGIONS),
    fold=r"[1-9][0-9]*",


def dataset_inputs(wildcards):
    """Files a dataset's encoding reads: its own inputs and its test sets' (for overlap)."""
    dataset = DATASETS[wildcards.dataset]
    files = list(dataset.input_files)
    for name in dataset.test_sets:
        files += dataset.test_set(name).input_files
    return files


def test_set_inputs(wildcards):
    return list(DATASETS[wildcards.dataset].test_set(wildcards.test_set).input_files)


def prediction_shards(wildcards, extension):
    """The prediction shards of one data set and model, in record order."""
    shards = RESOURCES["predict_shards"]
    return [f"results/{wildcards.dataset}/{wildcards.model}/shards/"
            f"predictions.{k}-of-{shards}.{extension}" for k in range(1, shards + 1)]


def variant_effect_shards(wildcards):
    """The variant-effect shard folders of one data set and model, in record order."""
    shards = RESOURCES["predict_shards"]
    return [f"results/{wildcards.dataset}/{wildcards.model}/variant_effect_shards/"
            f"{k}-of-{shards}" for k in range(1, shards + 1)]


def predict_inputs(wildcards):
    dataset = DATASETS[wildcards.dataset]
    return list(dataset.predict or dataset.fasta or dataset.inputs)


def model_runs():
    """(dataset, model) pairs trained on one split, as each data set's `models` list selects
    them (cross-validated data sets train per fold instead)."""
    return [(d, m) for d, dataset in DATASETS.items() if d not in CV_DATASETS
            for m in dataset_models(dataset, config["models"])]


def fold_numbers(dataset):
    return range(1, DATASETS[dataset].cv.folds_run + 1)


def fold_model_files(wildcards, name):
    """One file of every model of a data set in one fold, in config order."""
    return [f"results/{wildcards.dataset}/cv/fold{wildcards.fold}/{m}/{name}"
            for m in dataset_models(DATASETS[wildcards.dataset], config["models"])]


def cv_fold_files(wildcards, name):
    """One file of every model in every fold run of a data set, fold by fold."""
    models = dataset_models(DATASETS[wildcards.dataset], config["models"])
    return [f"results/{wildcards.dataset}/cv/fold{k}/{m}/{name}"
            for k in fold_numbers(wildcards.dataset) for m in models]


def cv_extra_files(wildcards):
    """Per fold: the k-mer baseline and the ensemble, where the data set asks for them."""
    dataset, files = DATASETS[wildcards.dataset], []
    for k in fold_numbers(wildcards.dataset):
        if dataset.baseline.enabled:
            files.append(f"results/{wildcards.dataset}/cv/fold{k}/baselines/kmer")
        if dataset.cv.ensemble:
            files.append(f"results/{wildcards.dataset}/cv/fold{k}/ensemble/metrics.json")
    return files


def cv_outputs():
    return [f"results/{d}/cv/summary.json" for d in CV_DATASETS]


def baseline_outputs():
    return [f"results/{d}/baselines/kmer" for d in BASELINE_DATASETS if d not in CV_DATASETS]


def model_outputs(*names):
    return [f"results/{d}/{m}/{name}" for d, m in model_runs() for name in names]


def test_set_outputs():
    return [f"results/{d}/{m}/test_sets/{t}/metrics.json"
            for d, m in model_runs() for t in DATASETS[d].test_sets]


def prediction_outputs():
    outputs = []
    for d, m in model_runs():
        dataset = DATASETS[d]
        if not (dataset.predict or dataset.fasta or dataset.class_fastas):
            continue  # a table-only data set has no FASTA to predict
        outputs.append(f"results/{d}/{m}/predictions.tsv")
        if d in RESIDUE_DATASETS:
            outputs.append(f"results/{d}/{m}/predictions.fasta")
    return outputs


def reference_files():
    """The reference FASTA and whichever of its indexes exist (.fai, .gzi)."""
    path = VARIANT_EFFECT.reference
    return [path] + [p for p in (f"{path}.fai", f"{path}.gzi") if os.path.exists(p)]


def variant_effect_outputs(name="summary.json"):
    if VARIANT_EFFECT is None:
        return []
    return [f"results/{d}/{m}/variant_effect/{name}" for d, m in VARIANT_EFFECT.pairs()]


def ism_outputs(name="ism.json"):
    if VARIANT_EFFECT is None:
        return []
    return [f"results/{d}/{m}/ism/{slug}/{name}" for d, m in VARIANT_EFFECT.pairs()
            for slug in ISM_REGIONS]


def all_outputs():
    return [config["report"], *model_outputs("metrics.json"), *test_set_outputs(),
            *prediction_outputs(), *variant_effect_outputs(), *ism_outputs(), *cv_outputs(),
            *baseline_outputs()]
