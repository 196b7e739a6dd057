rule report:
    input:
        metrics=expand("results/{dataset}/{model}/metrics.json", dataset=DATASETS, model=MODELS),
        summaries=expand("results/{dataset}/{model}/train.json", dataset=DATASETS, model=MODELS),
    output:
        html=config["report"],
    log:
        "logs/report.log",
    params:
        config=config,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/bioseq.yaml"
    script:
        "../scripts/report.py"
