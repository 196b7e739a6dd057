rule predict:
    input:
        model="results/{dataset}/{model}/model.pt",
        fasta=predict_inputs,
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
    threads: RESOURCES["threads"]
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/bioseq.yaml"
    shell:
        "bioseq --threads {threads} predict --model-file {input.model:q} --fasta {input.fasta:q}"
        " --out {output.predictions:q} > {log:q} 2>&1"


rule predict_residues:
    input:
        model="results/{dataset}/{model}/model.pt",
        fasta=predict_inputs,
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
    threads: RESOURCES["threads"]
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/bioseq.yaml"
    shell:
        "bioseq --threads {threads} predict --model-file {input.model:q} --fasta {input.fasta:q}"
        " --out {output.predictions:q} --fasta-out {output.labels:q} > {log:q} 2>&1"
