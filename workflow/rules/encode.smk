rule encode:
    input:
        dataset_inputs,
    output:
        store=directory("results/{dataset}/encoded"),
    log:
        "logs/{dataset}/encode.log",
    params:
        dataset=lambda wildcards: config["datasets"][wildcards.dataset],
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/bioseq.yaml"
    script:
        "../scripts/encode.py"
