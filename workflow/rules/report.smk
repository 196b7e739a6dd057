rule report:
    input:
        metrics=model_outputs("metrics.json"),
        summaries=model_outputs("train.json"),
        test_sets=test_set_outputs(),
        variant_effects=variant_effect_outputs(),
        ism=ism_outputs(),
        cross_validation=cv_outputs(),
        baselines=baseline_outputs(),
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
        **slurm_resources(),
    conda:
        "../../envs/bioseq.yaml"
    script:
        "../scripts/report.py"
