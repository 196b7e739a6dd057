rule encode:
    input:
        dataset_inputs,
    output:
        store=directory("results/{dataset}/encoded"),
    log:
        "logs/{dataset}/encode.log",
    params:
        dataset=encoding_params,
        test_set=None,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        **slurm_resources(),
    conda:
        "../../envs/bioseq.yaml"
    script:
        "../scripts/encode.py"


rule encode_test_set:
    input:
        test_set_inputs,
        store="results/{dataset}/encoded",
    output:
        store=directory("results/{dataset}/test_sets/{test_set}/encoded"),
    log:
        "logs/{dataset}/test_sets/{test_set}/encode.log",
    params:
        dataset=encoding_params,
        test_set=lambda wildcards: wildcards.test_set,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        **slurm_resources(),
    conda:
        "../../envs/bioseq.yaml"
    script:
        "../scripts/encode.py"
