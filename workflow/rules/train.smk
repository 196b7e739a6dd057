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
        model=lambda wildcards: MODEL_GRID.entries[wildcards.model],
        training=config.get("training", {}),
    threads: RESOURCES["threads"]
    resources:
        mem_mb=RESOURCES["mem_mb"],
        runtime=RESOURCES["runtime"],
        **slurm_resources(gpus=RESOURCES["gpu"]),
    conda:
        "../../envs/bioseq.yaml"
    script:
        "../scripts/train.py"
