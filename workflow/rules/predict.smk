# Predictions run as `resources.predict_shards` jobs per data set and model, each on a
# contiguous run of the records (scatter); a local job concatenates them in input order.


localrules:
    merge_predictions,
    merge_residue_predictions,


rule predict:
    input:
        model="results/{dataset}/{model}/model.pt",
        fasta=predict_inputs,
    output:
        predictions=temp("results/{dataset}/{model}/shards/predictions.{shard}-of-{shards}.tsv"),
    log:
        "logs/{dataset}/{model}/predict/{shard}-of-{shards}.log",
    wildcard_constraints:
        dataset=alternatives(SEQUENCE_DATASETS),
        shard=r"\d+",
        shards=r"\d+",
    threads: RESOURCES["threads"]
    resources:
        mem_mb=4000,
        runtime=60,
        **slurm_resources(gpus=RESOURCES["predict_gpu"]),
    conda:
        "../../envs/bioseq.yaml"
    shell:
        "bioseq --threads {threads} predict --model-file {input.model:q} --fasta {input.fasta:q}"
        " --shard {wildcards.shard}/{wildcards.shards} --out {output.predictions:q}"
        " > {log:q} 2>&1"


rule predict_residues:
    input:
        model="results/{dataset}/{model}/model.pt",
        fasta=predict_inputs,
    output:
        predictions=temp("results/{dataset}/{model}/shards/predictions.{shard}-of-{shards}.tsv"),
        labels=temp("results/{dataset}/{model}/shards/predictions.{shard}-of-{shards}.fasta"),
    log:
        "logs/{dataset}/{model}/predict/{shard}-of-{shards}.log",
    wildcard_constraints:
        dataset=alternatives(RESIDUE_DATASETS),
        shard=r"\d+",
        shards=r"\d+",
    threads: RESOURCES["threads"]
    resources:
        mem_mb=4000,
        runtime=60,
        **slurm_resources(gpus=RESOURCES["predict_gpu"]),
    conda:
        "../../envs/bioseq.yaml"
    shell:
        "bioseq --threads {threads} predict --model-file {input.model:q} --fasta {input.fasta:q}"
        " --shard {wildcards.shard}/{wildcards.shards} --out {output.predictions:q}"
        " --fasta-out {output.labels:q} > {log:q} 2>&1"


rule merge_predictions:
    input:
        tables=lambda wildcards: prediction_shards(wildcards, "tsv"),
    output:
        predictions=report(
            "results/{dataset}/{model}/predictions.tsv",
            caption="../report/predictions.rst",
            category="Predictions",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "model": "{model}", "table": "predictions"},
        ),
    log:
        "logs/{dataset}/{model}/predict.log",
    wildcard_constraints:
        dataset=alternatives(SEQUENCE_DATASETS),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    conda:
        "../../envs/bioseq.yaml"
    script:
        "../scripts/merge_predictions.py"


rule merge_residue_predictions:
    input:
        tables=lambda wildcards: prediction_shards(wildcards, "tsv"),
        labels=lambda wildcards: prediction_shards(wildcards, "fasta"),
    output:
        predictions=report(
            "results/{dataset}/{model}/predictions.tsv",
            caption="../report/residue_predictions.rst",
            category="Predictions",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "model": "{model}", "table": "per-residue"},
        ),
        labels="results/{dataset}/{model}/predictions.fasta",
    log:
        "logs/{dataset}/{model}/predict.log",
    wildcard_constraints:
        dataset=alternatives(RESIDUE_DATASETS),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    conda:
        "../../envs/bioseq.yaml"
    script:
        "../scripts/merge_predictions.py"
