import sys

from snakemake.utils import validate

from bioseq.config import check_workflow_config, dataset_config
from bioseq.errors import BioseqError

# bioseq's own check first: it names the first bad key in one line; the schema then
# documents every key and fills in the defaults.
try:
    check_workflow_config(config)
except BioseqError as err:
    sys.exit(f"bioseq: error: {err}")
validate(config, workflow.source_path("../schemas/config.schema.yaml"))

DATASETS = list(config["datasets"])
MODELS = list(config["models"])
RESOURCES = config["resources"]


wildcard_constraints:
    dataset="|".join(map(re.escape, DATASETS)),
    model="|".join(map(re.escape, MODELS)),


def dataset_inputs(wildcards):
    """Files a dataset's encoding reads (FASTA files and the labels table)."""
    dataset = dataset_config(wildcards.dataset, config["datasets"][wildcards.dataset])
    return [*dataset.inputs, *([dataset.labels_table] if dataset.labels_table else [])]


def predict_inputs(wildcards):
    dataset = dataset_config(wildcards.dataset, config["datasets"][wildcards.dataset])
    return list(dataset.predict or dataset.inputs)


def all_outputs():
    return [
        config["report"],
        *expand(
            "results/{dataset}/{model}/{name}",
            dataset=DATASETS,
            model=MODELS,
            name=["metrics.json", "predictions.tsv"],
        ),
    ]
