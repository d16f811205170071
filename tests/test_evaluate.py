"""fmnist.evaluation.metrics and the evaluation figures: statistics checked against hand-worked
values and
scipy, metrics against scikit-learn, on real Fashion-MNIST subsets."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image
from scipy import stats
from sklearn.linear_model import LogisticRegression, Perceptron
from sklearn.metrics import accuracy_score, f1_score, log_loss
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from typer.testing import CliRunner

from fmnist.cli.app import app
from fmnist.evaluation.metrics import accuracy_ci, evaluate, mcnemar_exact, most_confused
from fmnist.reporting.plots import evaluation as plots

# Small training sets end lbfgs early on purpose: the models are still real and well above chance.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _flatten(X):
    return X.reshape(len(X), -1) / 255.0


def _pipe(clf):
    return make_pipeline(FunctionTransformer(_flatten), clf)


@pytest.fixture(scope="module")
def logistic(small_train):
    """Multinomial logistic regression on 500 real images (seconds to fit)."""
    train = small_train.head(n_per_class=50, seed=0)
    return _pipe(LogisticRegression(max_iter=100, tol=1e-3)).fit(train.images, train.labels)


def _pairs(both_right: int, only_a: int, only_b: int, both_wrong: int):
    a = np.array([1] * both_right + [1] * only_a + [0] * only_b + [0] * both_wrong, dtype=bool)
    b = np.array([1] * both_right + [0] * only_a + [1] * only_b + [0] * both_wrong, dtype=bool)
    return a, b


def test_mcnemar_exact_matches_hand_worked_binomial():
    # 9 discordant pairs, split 7:2. Under H0 each is a fair coin: two-sided exact p is
    # 2 * P(X <= 2 | n=9, p=1/2) = 2 * (1 + 9 + 36) / 512 = 92/512.
    a, b = _pairs(80, 7, 2, 11)
    result = mcnemar_exact(a, b)
    assert (result.only_a, result.only_b, result.both_right, result.both_wrong) == (7, 2, 80, 11)
    assert result.pvalue == pytest.approx(92 / 512, abs=1e-12)
    assert result.pvalue == pytest.approx(stats.binomtest(2, 9, 0.5).pvalue, abs=1e-12)
    assert not result.significant()
    # Swapping the models swaps the counts but not the p-value.
    assert mcnemar_exact(b, a).pvalue == pytest.approx(result.pvalue, abs=1e-12)


def test_mcnemar_exact_significant_and_degenerate_cases():
    a, b = _pairs(500, 40, 12, 30)
    result = mcnemar_exact(a, b)
    assert result.pvalue == pytest.approx(stats.binomtest(12, 52, 0.5).pvalue, rel=1e-9)
    assert result.pvalue < 0.001 and result.significant()
    same = np.array([True, False, True])
    assert mcnemar_exact(same, same).pvalue == 1.0  # no discordant pair: no evidence
    with pytest.raises(ValueError):
        mcnemar_exact(np.ones(3, bool), np.ones(4, bool))


def test_wilson_interval_matches_formula():
    k, n = 850, 1000
    z = stats.norm.ppf(0.975)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low, high = accuracy_ci(k, n, "wilson")
    assert (low, high) == pytest.approx((centre - half, centre + half), abs=1e-12)
    assert low < p < high


def test_clopper_pearson_matches_scipy_exact_interval():
    k, n = 8912, 10000
    low, high = accuracy_ci(k, n, "clopper-pearson")
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    assert (low, high) == pytest.approx((ci.low, ci.high), abs=1e-10)
    assert (low, high) == pytest.approx((stats.beta.ppf(0.025, k, n - k + 1),
                                         stats.beta.ppf(0.975, k + 1, n - k)), abs=1e-10)


def test_unknown_ci_method_is_a_user_error():
    from fmnist.errors import FmnistError

    with pytest.raises(FmnistError, match="clopper-pearson"):
        accuracy_ci(5, 10, "bootstrap")


def test_evaluate_matches_sklearn_on_real_subset(logistic, small_test):
    ev = evaluate(logistic, small_test, model_name="logistic", fit_seconds=1.5)
    predicted = logistic.predict(small_test.images)
    assert ev.accuracy == pytest.approx(accuracy_score(small_test.labels, predicted))
    assert 0.65 < ev.accuracy < 0.95  # a real model on real data, clearly above chance
    assert ev.ci_low < ev.accuracy < ev.ci_high
    assert ev.macro["f1"] == pytest.approx(f1_score(small_test.labels, predicted,
                                                    average="macro"))
    assert ev.log_loss == pytest.approx(log_loss(small_test.labels,
                                                 logistic.predict_proba(small_test.images)))
    assert ev.accuracy <= ev.top2_accuracy <= 1.0
    assert ev.confusion.sum() == len(small_test)
    assert np.trace(ev.confusion) == int(round(ev.accuracy * len(small_test)))
    assert np.allclose(ev.confusion_normalized.sum(axis=1), 1.0)
    assert [row["class"] for row in ev.per_class] == list(small_test.class_names)
    assert sum(row["support"] for row in ev.per_class) == len(small_test)
    assert ev.n_params == 784 * 10 + 10  # weights + intercepts
    assert ev.images_per_second > 0 and ev.fit_seconds == 1.5
    # The most confused pairs are the largest off-diagonal cells, in order.
    counts = [p["count"] for p in ev.confused_pairs]
    assert counts == sorted(counts, reverse=True)
    off = ev.confusion.copy()
    np.fill_diagonal(off, 0)
    assert counts[0] == off.max()
    assert all(p["actual"] != p["predicted"] for p in ev.confused_pairs)
    report = ev.text()
    assert "Shirt" in report and f"{ev.accuracy:.4f}" in report
    data = json.loads(json.dumps(ev.to_dict()))
    assert data["accuracy"] == ev.accuracy and len(data["confusion"]) == 10


def test_model_without_probabilities_and_with_missing_class(small_train, small_test):
    train = small_train.head(n_per_class=40, seed=0)
    sub = train.subset(np.flatnonzero(train.labels != 3))  # no Dress in training
    perceptron = _pipe(Perceptron(random_state=0)).fit(sub.images, sub.labels)
    ev = evaluate(perceptron, small_test)
    assert ev.log_loss is None and ev.top2_accuracy is None and ev.proba is None
    assert ev.per_class[3]["recall"] == 0.0  # never predicts the unseen class

    logistic = _pipe(LogisticRegression(max_iter=100, tol=1e-3)).fit(sub.images, sub.labels)
    ev = evaluate(logistic, small_test)
    assert ev.proba.shape == (len(small_test), 10)
    assert np.all(ev.proba[:, 3] == 0.0)  # the unseen class gets probability 0
    assert math.isfinite(ev.log_loss)


def test_kmeans_extra_metrics_are_reported(small_train, small_test):
    from fmnist.models import create_model

    train = small_train.head(n_per_class=50, seed=0)
    model = create_model("kmeans", n_init=1).fit(train.images, train.labels)
    ev = evaluate(model, small_test)
    assert {"ari", "nmi", "train_ari", "train_nmi"} <= set(ev.extra)
    assert 0.0 < ev.extra["nmi"] <= 1.0
    assert "nmi" in ev.text()


def test_most_confused_with_perfect_predictions():
    assert most_confused(np.diag([5, 5, 5]), ["a", "b", "c"]) == []


def test_figures_are_written(logistic, small_test, tmp_path):
    ev = evaluate(logistic, small_test)
    names = small_test.class_names
    history = [{"epoch": i, "train_loss": 1 / i, "val_loss": 1.1 / i, "train_acc": 1 - 1 / (i + 1),
                "val_acc": 0.9 - 1 / (i + 2)} for i in range(1, 6)]
    paths = [
        plots.confusion_heatmap(ev.confusion, names, tmp_path / "cm.png"),
        plots.prediction_grid(small_test.images, ev.y_true, ev.y_pred, names, tmp_path / "g.png"),
        plots.confident_mistakes(small_test.images, ev.y_true, ev.y_pred, ev.proba, names,
                                 tmp_path / "m.png"),
        plots.training_curves(history, tmp_path / "c.png"),
        plots.accuracy_vs_time(["a", "b"], [0.8, 0.9], [(0.78, 0.82), (0.88, 0.92)], [0.5, 60],
                               ["classical", "neural"], tmp_path / "t.png"),
        plots.f1_heatmap(np.array([[r["f1"] for r in ev.per_class]] * 2), ["a", "b"], names,
                         tmp_path / "f.png"),
    ]
    for path in paths:
        with Image.open(path) as img:
            assert img.format == "PNG" and img.width > 300 and img.height > 200


def test_history_series_understands_key_names():
    series = plots._history_series([{"loss": 1.0, "val_loss": 2.0, "accuracy": 0.5,
                                     "val_accuracy": 0.4}], "acc")
    assert series == {"train": [0.5], "validation": [0.4]}


def test_evaluate_cli_writes_figures(tmp_path, small_train):
    from fmnist.runs.train import train_run

    run = train_run("bayes-1", {}, small_train, None, run_dir=tmp_path / "run")
    result = CliRunner().invoke(app, ["evaluate", str(run.run_dir)])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and "Ankle boot" in result.output
    for name in ("confusion.png", "predictions.png", "mistakes.png", "evaluation.json"):
        assert (run.run_dir / name).is_file(), name
    saved = json.loads((run.run_dir / "evaluation.json").read_text())
    assert saved["n_images"] == 10000 and saved["size_bytes"] > 0
    assert saved["accuracy"] == pytest.approx(
        run.model.score(*_official_test()), abs=1e-12)


def _official_test():
    from fmnist.data import load_fashion_mnist

    test = load_fashion_mnist("test")
    return test.images, test.labels


def test_evaluate_cli_missing_run_is_a_clear_error(tmp_path, monkeypatch, capsys):
    from fmnist.cli import main

    monkeypatch.setattr("sys.argv", ["fmnist", "evaluate", str(tmp_path / "nope")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "no such run folder" in err and "Traceback" not in err
