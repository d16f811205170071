"""The catalogue: every registered model, declared without importing any model code.

Each entry names its builder as an import string, so this module (and `fmnist models`) loads
neither torch, scikit-learn nor scikit-image; the model's module is imported when the model is
built. Adding a model is one `_classical(...)`/`_neural(...)` line here plus its class.

Classical defaults were chosen by measurement on the full 60k/10k split on 2 CPU cores
(benchmarks/classical.py, numbers in benchmarks/RESULTS.md); their `quick` settings keep each
model's fit + 10k predictions around 20 s for the comparison's quick preset, mostly by training
on a subset (`max_train`). Neural defaults are documented in docs/neural.md with the
measurements that chose them; their `quick` overrides keep each model near 40 s on 2 CPU cores
(a stratified `max_train` subset and/or fewer epochs), sized from measured per-image costs.
"""

from __future__ import annotations

from typing import Any

from fmnist.models.registry import ModelSpec, register

CLASSICAL = "fmnist.models.classical"
TORCH = "fmnist.models.torch_estimator:TorchClassifier"

SEED_PROTOCOL: dict[str, Any] = {
    # The seed notebook: Adam 1e-3, batch 512, 20 % validation, plain cross-entropy, final
    # weights kept (Keras' fit does not restore the best epoch), no augmentation.
    "batch_size": 512, "lr": 1e-3, "optimizer": "adam", "weight_decay": 0.0,
    "schedule": "constant", "warmup": 0.0, "label_smoothing": 0.0, "augment": False,
    "val_fraction": 0.2, "restore_best": False,
}

FAST_SGD: dict[str, Any] = {
    # Measured best accuracy per CPU-second for BN nets (docs/neural.md): SGD-Nesterov, linear
    # warm-up 20 % then linear decay to 0, label smoothing 0.1.
    "optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "schedule": "linear",
    "warmup": 0.2, "label_smoothing": 0.1, "batch_size": 128,
}


def _classical(name: str, builder: str, description: str, quick: dict | None = None,
               **defaults: Any) -> None:
    register(ModelSpec(name=name, family="classical", description=description,
                       build=builder if ":" in builder else f"{CLASSICAL}:{builder}",
                       defaults=defaults, quick=quick or {}))


def _neural(name: str, description: str, defaults: dict[str, Any], quick: dict[str, Any],
            builder: str = TORCH) -> None:
    register(ModelSpec(name=name, family="neural", description=description, build=builder,
                       defaults=defaults, quick=quick))


# --- classical ------------------------------------------------------------------------------
_classical("knn", "KNNClassifier",
           "k nearest neighbours (k=5, distance-weighted) on PCA-50 pixels",
           quick={"max_train": 20000})
_classical("svm", "SVMClassifier", "RBF support vector machine (C=10) on PCA-100 pixels",
           quick={"max_train": 8000})
_classical("hog-svm", "HOGSVMClassifier",
           "RBF support vector machine on HOG edge features joined with pixels (PCA-200)",
           quick={"max_train": 5000})
_classical("linear-svm", "LinearSVMClassifier", "linear support vector machine on pixels",
           quick={"max_train": 10000})
_classical("logistic", "LogisticClassifier", "multinomial logistic regression on pixels",
           quick={"max_train": 20000})
_classical("perceptron", "PerceptronClassifier", "averaged perceptron on pixels",
           quick={"max_iter": 5})
_classical("decision-tree", "DecisionTreeModel", "one decision tree (entropy, depth 12)",
           quick={"max_train": 20000})
_classical("random-forest", "RandomForestModel", "random forest of 100 trees on pixels",
           quick={"n_estimators": 30, "max_train": 20000})
_classical("adaboost", "AdaBoostModel", "AdaBoost (SAMME) of depth-6 trees on PCA-50 pixels",
           quick={"n_estimators": 30, "max_train": 10000})
_classical("gradient-boosting", "GradientBoostingModel",
           "histogram gradient boosting (100 rounds, rate 0.2) on pixels",
           quick={"reduce": "pca:50", "scale": "unit", "max_iter": 40, "learning_rate": 0.3,
                  "max_train": 20000})
_BAYES = "fmnist.models.bayes:BayesClassifier"
_classical("bayes-1", _BAYES,
           "Gaussian Bayes case I: Σ_i = σ²I (nearest mean with priors), on Fisher-LDA features",
           case=1)
_classical("bayes-2", _BAYES,
           "Gaussian Bayes case II: one shared Σ (linear), on Fisher-LDA features", case=2)
_classical("bayes-3", _BAYES,
           "Gaussian Bayes case III: one Σ_i per class, regularised (quadratic), on Fisher-LDA "
           "features", case=3, reg=0.05)
_classical("kmeans", "fmnist.models.kmeans:KMeansClassifier",
           "k-means clusters named by their majority training label (reports ARI, NMI)")

# --- neural ---------------------------------------------------------------------------------
# The seed notebook's three Keras CNNs, our fast `cnn`, a ResNet, a VGG16, the MLP, and
# AdaBoost over a small CNN.
for _name, _arch, _epochs, _quick, _desc in (
    ("cnn-seed1", "seed1", 10, {"epochs": 3},
     "seed notebook CNN 1: Conv32-Pool-Dense128 (693,962 params), Adam, batch 512"),
    ("cnn-seed2", "seed2", 20, {"epochs": 5, "max_train": 30000},
     "seed notebook CNN 2: Conv32-Conv64 + Dense 128-256-128 with dropout"),
    ("cnn-seed3", "seed3", 50, {"epochs": 2, "max_train": 20000},
     "seed notebook CNN 3: Conv64-128-64 + Dense 128-256-256-128 with dropout"),
):
    _neural(_name, _desc, {"arch": _arch, "epochs": _epochs, **SEED_PROTOCOL}, _quick)

SPEED_RECIPE: dict[str, Any] = {
    # airbench94 ported to 1×28×28 (docs/neural.md, benchmarks/speedrun.py): BN biases at 64×
    # the learning rate, Nesterov 0.85, triangular LR, label smoothing 0.2, lookahead, translate
    # ±2 + alternating flip, 6-view TTA. batch_size None = 128 on CPU, 1024 on a GPU with lr
    # scaled linearly: 0.19 × 8 ≈ 1.5, the mean-loss equivalent of airbench's 11.5 per 1024.
    "batch_size": None, "lr": 0.19, "optimizer": "sgd", "momentum": 0.85,
    "weight_decay": 1.3e-3, "bn_bias_lr": 64.0, "schedule": "triangular", "warmup": 0.23,
    "label_smoothing": 0.2, "lookahead": True, "augment": "translate,altflip",
    "tta": "flip-shift",
}
CPU_SPEED_RECIPE: dict[str, Any] = {
    # SPEED_RECIPE for a small net on CPU: lr 0.5 per 128 (0.19 scored 0.6 points lower on a
    # 10k subset); on a GPU batch 1024 with lr √8 × 0.5 = 1.41 (on 2 CPU cores as accurate as
    # 128; linear scaling lost 3–5 points on the GPU, docs/neural.md). No translate: in 6
    # epochs the shifted images are examples the net has no time to learn (0.9366 vs 0.9329
    # on 60k, 3 seeds), and without them the shifted test-time views go too (2 views: 3×
    # faster prediction). bf16 training steps where the CPU computes bf16 natively: 119 s
    # instead of 158 s, same accuracy (3 seeds).
    **SPEED_RECIPE, "lr": 0.5, "lr_scaling": "sqrt", "augment": "altflip", "tta": "flip",
    "cpu_bf16": "auto",
}
_neural("cnn", "our fast CNN: speednet at width 20 (patch whitening, dirac init, 20-80-80), "
        "the airbench recipe at lr 0.5 with flips only, flip TTA; 6 epochs",
        {"arch": "speednet", "width": 20, "epochs": 6, "val_fraction": 0.0, **CPU_SPEED_RECIPE},
        {"width": 16, "epochs": 2, "max_train": 20000})
_neural("speednet",
        "airbench-style net for 28×28: patch whitening, dirac init, 3 conv groups 64-256-256",
        {"arch": "speednet", "width": 64, "epochs": 10, "val_fraction": 0.0, **SPEED_RECIPE},
        {"width": 16, "epochs": 2, "max_train": 20000})
_neural("resnet", "ResNet-20 for 28×28 (3 stages × 3 basic blocks, 16-32-64), flips + shifts",
        {"arch": "resnet", "width": 16, "depth": 3, "epochs": 30, "val_fraction": 0.1,
         "augment": "translate,flip", **{**FAST_SGD, "lr": 0.1}},
        {"width": 8, "depth": 1, "epochs": 2, "max_train": 20000})
_neural("vgg", "VGG16-BN adapted to 28×28 (13 convs in 5 blocks + 3 FC), channels ÷4",
        {"arch": "vgg", "width": 16, "hidden": 256, "batch_norm": True, "epochs": 20,
         "val_fraction": 0.1, "augment": "translate,flip", **FAST_SGD},
        {"width": 8, "hidden": 128, "epochs": 2, "max_train": 20000})
_neural("mlp", "back-propagation network: 784-512-256-10, ReLU, dropout 0.2, Adam",
        {"arch": "mlp", "hidden": (512, 256), "dropout": 0.2, "epochs": 20, "batch_size": 256,
         "lr": 1e-3, "optimizer": "adam", "weight_decay": 0.0, "schedule": "cosine",
         "warmup": 0.0, "label_smoothing": 0.0, "augment": False, "val_fraction": 0.1},
        {"epochs": 5})
_neural("adaboost-cnn",
        "AdaBoost (SAMME) over small CNNs (width 8, 2 blocks); measured: worse than one CNN",
        {"n_estimators": 5, "arch": "cnn", "width": 8, "depth": 2, "epochs": 2,
         "val_fraction": 0.0, **FAST_SGD},
        {"n_estimators": 3, "epochs": 2, "max_train": 20000},
        builder="fmnist.models.neural:build_adaboost")
