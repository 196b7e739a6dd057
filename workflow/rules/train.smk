rule train:
    input:
        store="results/{dataset}/encoded",
    output:
        model="results/{dataset}/{model}/model.pt",
        history="results/{dataset}/{model}/history.tsv",
        summary="results/{dataset}/{model}/train.json",
    log:
        "logs/{dataset}/{model}/train.log",
    params:
        model=lambda wildcards: config["models"][wildcards.model],
        training=config.get("training", {}),
    threads: RESOURCES["threads"]
    resources:
        gpu=RESOURCES["gpu"],
        mem_mb=RESOURCES["mem_mb"],
        runtime=RESOURCES["runtime"],
    conda:
        "../../envs/bioseq.yaml"
    script:
        "../scripts/train.py"
