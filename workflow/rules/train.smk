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
        model=lambda wildcards: train_params(wildcards.model)[0],
        training=lambda wildcards: train_params(wildcards.model)[1],
    threads: RESOURCES["threads"]
    resources:
        mem_mb=RESOURCES["mem_mb"],
        runtime=RESOURCES["runtime"],
        **slurm_resources(gpus=RESOURCES["gpu"]),
    conda:
        "../../envs/bioseq.yaml"
    script:
        "../scripts/train.py"
