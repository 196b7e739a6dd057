rule evaluate:
    input:
        model="results/{dataset}/{model}/model.pt",
        history="results/{dataset}/{model}/history.tsv",
        summary="results/{dataset}/{model}/train.json",
        store="results/{dataset}/encoded",
    output:
        metrics="results/{dataset}/{model}/metrics.json",
        predictions="results/{dataset}/{model}/test_predictions.tsv",
        curves=report(
            "results/{dataset}/{model}/learning_curves.png",
            caption="../report/learning_curves.rst",
            category="Training",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "model": "{model}", "figure": "learning curves"},
        ),
        confusion=report(
            "results/{dataset}/{model}/confusion_matrix.png",
            caption="../report/confusion_matrix.rst",
            category="Evaluation",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "model": "{model}", "figure": "confusion matrix"},
        ),
    log:
        "logs/{dataset}/{model}/evaluate.log",
    threads: RESOURCES["threads"]
    resources:
        mem_mb=4000,
        runtime=60,
        **slurm_resources(gpus=RESOURCES["predict_gpu"]),
    conda:
        "../../envs/bioseq.yaml"
    script:
        "../scripts/evaluate.py"


rule evaluate_test_set:
    input:
        model="results/{dataset}/{model}/model.pt",
        store="results/{dataset}/test_sets/{test_set}/encoded",
    output:
        metrics="results/{dataset}/{model}/test_sets/{test_set}/metrics.json",
        predictions="results/{dataset}/{model}/test_sets/{test_set}/test_predictions.tsv",
        confusion=report(
            "results/{dataset}/{model}/test_sets/{test_set}/confusion_matrix.png",
            caption="../report/confusion_matrix.rst",
            category="Evaluation",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "model": "{model}", "test set": "{test_set}",
                    "figure": "confusion matrix"},
        ),
    log:
        "logs/{dataset}/{model}/test_sets/{test_set}/evaluate.log",
    threads: RESOURCES["threads"]
    resources:
        mem_mb=4000,
        runtime=60,
        **slurm_resources(gpus=RESOURCES["predict_gpu"]),
    conda:
        "../../envs/bioseq.yaml"
    script:
        "../scripts/evaluate.py"
