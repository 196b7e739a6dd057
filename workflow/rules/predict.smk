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
    threads: RESOURCES["threads"]
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/bioseq.yaml"
    shell:
        "bioseq --threads {threads} predict --model-file {input.model:q} --fasta {input.fasta:q}"
        " --out {output.predictions:q} > {log:q} 2>&1"
