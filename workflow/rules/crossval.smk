# Cross-validation (datasets with `cv: {folds: K}`) and the k-mer baseline (`baseline:`).
# Every fold is a store of its own; its models, baseline and ensemble are ordinary jobs, so
# a cluster runs the folds in parallel. cv_summary averages the test scores over folds.


rule cv_fold:
    input:
        store="results/{dataset}/encoded",
    output:
        store=directory("results/{dataset}/cv/fold{fold}/encoded"),
    log:
        "logs/{dataset}/cv/fold{fold}/encode.log",
    params:
        cv=lambda wildcards: DATASETS[wildcards.dataset].cv,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        **slurm_resources(),
    conda:
        "../../envs/bioseq.yaml"
    script:
        "../scripts/cv_fold.py"


use rule train as train_fold with:
    input:
        store="results/{dataset}/cv/fold{fold}/encoded",
    output:
        model="results/{dataset}/cv/fold{fold}/{model}/model.pt",
        history="results/{dataset}/cv/fold{fold}/{model}/history.tsv",
        summary="results/{dataset}/cv/fold{fold}/{model}/train.json",
    log:
        "logs/{dataset}/cv/fold{fold}/{model}/train.log",


rule evaluate_fold:
    input:
        model="results/{dataset}/cv/fold{fold}/{model}/model.pt",
        store="results/{dataset}/cv/fold{fold}/encoded",
    output:
        metrics="results/{dataset}/cv/fold{fold}/{model}/metrics.json",
        val_metrics="results/{dataset}/cv/fold{fold}/{model}/val_metrics.json",
        predictions="results/{dataset}/cv/fold{fold}/{model}/test_predictions.tsv",
    log:
        "logs/{dataset}/cv/fold{fold}/{model}/evaluate.log",
    threads: RESOURCES["threads"]
    resources:
        mem_mb=4000,
        runtime=60,
        **slurm_resources(gpus=RESOURCES["predict_gpu"]),
    conda:
        "../../envs/bioseq.yaml"
    script:
        "../scripts/evaluate.py"


rule ensemble_fold:
    input:
        models=lambda wildcards: fold_model_files(wildcards, "model.pt"),
        val_metrics=lambda wildcards: fold_model_files(wildcards, "val_metrics.json"),
        store="results/{dataset}/cv/fold{fold}/encoded",
    output:
        metrics="results/{dataset}/cv/fold{fold}/ensemble/metrics.json",
        predictions="results/{dataset}/cv/fold{fold}/ensemble/test_predictions.tsv",
    log:
        "logs/{dataset}/cv/fold{fold}/ensemble.log",
    params:
        select=lambda wildcards: DATASETS[wildcards.dataset].cv_select,
        top=lambda wildcards: DATASETS[wildcards.dataset].cv.ensemble,
    threads: RESOURCES["threads"]
    resources:
        mem_mb=4000,
        runtime=60,
        **slurm_resources(gpus=RESOURCES["predict_gpu"]),
    conda:
        "../../envs/bioseq.yaml"
    script:
        "../scripts/ensemble.py"


rule kmer_baseline:
    input:
        store="results/{dataset}/encoded",
        test_sets=lambda wildcards: [f"results/{wildcards.dataset}/test_sets/{t}/encoded"
                                     for t in DATASETS[wildcards.dataset].test_sets],
    output:
        folder=directory("results/{dataset}/baselines/kmer"),
    log:
        "logs/{dataset}/baselines/kmer.log",
    params:
        baseline=baseline_settings,
        test_sets=lambda wildcards: list(DATASETS[wildcards.dataset].test_sets),
        select=lambda wildcards: (DATASETS[wildcards.dataset].cv_select
                                  if DATASETS[wildcards.dataset].cv.folds else None),
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
        **slurm_resources(),
    conda:
        "../../envs/bioseq.yaml"
    script:
        "../scripts/baseline.py"


use rule kmer_baseline as kmer_baseline_fold with:
    input:
        store="results/{dataset}/cv/fold{fold}/encoded",
        test_sets=[],
    output:
        folder=directory("results/{dataset}/cv/fold{fold}/baselines/kmer"),
    log:
        "logs/{dataset}/cv/fold{fold}/baselines/kmer.log",
    params:
        baseline=baseline_settings,
        test_sets=[],
        select=lambda wildcards: DATASETS[wildcards.dataset].cv_select,


rule cv_summary:
    input:
        metrics=lambda wildcards: cv_fold_files(wildcards, "metrics.json"),
        val_metrics=lambda wildcards: cv_fold_files(wildcards, "val_metrics.json"),
        summaries=lambda wildcards: cv_fold_files(wildcards, "train.json"),
        extra=cv_extra_files,
    output:
        summary="results/{dataset}/cv/summary.json",
        table="results/{dataset}/cv/summary.tsv",
    log:
        "logs/{dataset}/cv/summary.log",
    params:
        folds=lambda wildcards: list(fold_numbers(wildcards.dataset)),
        models=lambda wildcards: dataset_models(DATASETS[wildcards.dataset], config["models"]),
        family=MODEL_GRID.family,
        settings=MODEL_GRID.settings,
        select=lambda wildcards: DATASETS[wildcards.dataset].cv_select,
        cv=lambda wildcards: DATASETS[wildcards.dataset].cv,
        baseline=lambda wildcards: DATASETS[wildcards.dataset].baseline,
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
        **slurm_resources(),
    conda:
        "../../envs/bioseq.yaml"
    script:
        "../scripts/cv_summary.py"
