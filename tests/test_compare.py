"""fmnist.evaluation.compare and fmnist.reporting.compare_report: a small real comparison (cheap
models, small subsets),
resuming, a failing model, McNemar against an independent recomputation, and the CLI."""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from fmnist.cli.app import app
from fmnist.errors import FmnistError
from fmnist.evaluation.compare import PRESETS, compare, config_hash, data_fingerprint, model_params
from fmnist.models import ModelSpec, registered
from fmnist.reporting.compare_report import build_report
from fmnist.reporting.render import render_markdown
from fmnist.runs.store import load

BROKEN = "broken-for-tests"


@pytest.fixture(scope="module")
def broken_model():
    """A registered model that fails in `fit` (a plain LogisticRegression cannot take 3-D
    images): the comparison must report it and carry on."""
    with registered(ModelSpec(BROKEN, "classical", "always fails to fit",
                              build=lambda **p: LogisticRegression(**p))):
        yield BROKEN


@pytest.fixture(scope="module")
def tiny(fmnist_train, fmnist_test):
    return fmnist_train.head(n_per_class=60, seed=1), fmnist_test.head(n_per_class=40, seed=1)


@pytest.fixture(scope="module")
def first_run(tiny, broken_model, tmp_path_factory):
    train, test = tiny
    out = tmp_path_factory.mktemp("cmp")
    result = compare(train, test, out, preset="quick",
                     models=["bayes-1", broken_model, "kmeans", "random-forest"],
                     with_explore=False,
                     log=lambda _: None)
    return out, result


def test_outputs_and_leaderboard(first_run, tiny):
    out, result = first_run
    for name in ("report.html", "report.md", "results.json", "results.csv"):
        assert (out / name).is_file(), name
    data = json.loads((out / "results.json").read_text())
    board = data["leaderboard"]
    assert [r["status"] for r in board] == ["ok", "ok", "ok", "failed"]
    failed = board[-1]
    assert failed["model"] == BROKEN and "ValueError" in failed["error"]
    ok = board[:3]
    accuracies = [r["accuracy"] for r in ok]
    assert accuracies == sorted(accuracies, reverse=True) and accuracies[-1] > 0.3
    assert data["best"] == ok[0]["model"]
    for row in ok:
        assert row["ci_low"] < row["accuracy"] < row["ci_high"]
        assert row["fit_seconds"] > 0 and row["predict_images_per_s"] > 0
        assert row["size_bytes"] > 0 and row["n_params"] > 0
    assert data["data"]["test_images"] == len(tiny[1])
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["model"] for r in rows] == [r["model"] for r in board]
    assert float(rows[0]["accuracy"]) == pytest.approx(ok[0]["accuracy"])
    md = (out / "report.md").read_text()
    assert "FAILED" in md and BROKEN in md and f"{ok[0]['accuracy']:.4f}" in md
    # k-means' own metrics (ARI/NMI on the test set) reach results.json and the report.
    nmi = data["evaluations"]["kmeans"]["extra"]["nmi"]
    assert 0 < nmi < 1 and "Model-specific metrics" in md and f"{round(nmi, 4)}" in md


def test_mcnemar_matches_independent_recomputation(first_run, tiny):
    """Reload both saved models, predict again, count the discordant pairs by hand and test
    them with scipy's exact binomial test."""
    out, _ = first_run
    _, test = tiny
    data = json.loads((out / "results.json").read_text())
    best, second = data["leaderboard"][:2]
    right = {}
    for row in (best, second):
        model = load(row["run_dir"]).model
        right[row["model"]] = model.predict(test.images) == test.labels
        assert np.mean(right[row["model"]]) == pytest.approx(row["accuracy"])
    a, b = right[best["model"]], right[second["model"]]
    only_best, only_second = int(np.sum(a & ~b)), int(np.sum(~a & b))
    expected = stats.binomtest(only_second, only_best + only_second, 0.5).pvalue
    assert second["mcnemar_p"] == pytest.approx(expected, rel=1e-9)
    assert second["significantly_worse"] == (expected < 0.05)
    assert best["mcnemar_p"] is None


def test_best_model_is_saved_as_a_run(first_run, tiny):
    out, result = first_run
    best = load(out / "best")
    assert best.meta["model"] == result.best.name
    _, test = tiny
    assert np.array_equal(best.model.predict(test.images), result.best.evaluation.y_pred)


def test_resume_reuses_finished_runs_and_retrains_missing(first_run, tiny, broken_model):
    out, first = first_run
    train, test = tiny
    by_name = {r.name: r for r in first.results}
    # An interrupted run: the folder exists but model.json was never written.
    (by_name["bayes-1"].run_dir / "model.json").unlink()
    again = compare(train, test, out, preset="quick", models=["bayes-1", "random-forest"],
                    with_explore=False, log=lambda _: None)
    reused = {r.name: r.reused for r in again.results}
    assert reused == {"bayes-1": False, "random-forest": True}
    for r in again.results:
        assert r.run_dir == by_name[r.name].run_dir
        assert r.evaluation.accuracy == pytest.approx(by_name[r.name].evaluation.accuracy)


def test_config_hash_tracks_params_and_data(tiny):
    train, _ = tiny
    data = data_fingerprint(train)
    base = config_hash("svm", {"C": 10}, data, 0)
    assert base == config_hash("svm", {"C": 10}, data_fingerprint(train), 0)
    assert base != config_hash("svm", {"C": 5}, data, 0)
    assert base != config_hash("svm", {"C": 10}, data, 1)
    assert base != config_hash("knn", {"C": 10}, data, 0)
    # Same size, same label sequence, one image changed: a different data set.
    changed = train.subset(np.arange(len(train)))
    changed.images = changed.images.copy()
    changed.images[0, 0, 0] ^= 1
    assert data_fingerprint(changed) != data
    assert config_hash("svm", {"C": 10}, data_fingerprint(changed), 0) != base


def test_quick_preset_covers_every_family():
    quick = PRESETS["quick"]
    from fmnist.models import get_spec

    families = {get_spec(m).family for m in quick.models}
    assert families == {"neural", "classical"}
    names = set(quick.models)
    assert {"knn", "svm", "random-forest"} <= names
    assert any(n.startswith("bayes") for n in names)
    assert any(n.startswith("cnn") for n in names)
    # Each model's registered quick settings apply, then the preset's own overrides.
    adaboost = get_spec("adaboost")
    assert model_params(quick, "adaboost") == {**adaboost.defaults, **adaboost.quick}
    assert model_params(quick, "svm")["max_train"] == quick.overrides["svm"]["max_train"]
    assert model_params(PRESETS["standard"], "svm") == dict(get_spec("svm").defaults)


def test_subset_is_labelled_in_report(first_run):
    _, result = first_run
    n = len(result.train)
    shrunk = [dataclasses.replace(r, train_images=n // 2) if r.ok else r for r in result.results]
    md = render_markdown(build_report(dataclasses.replace(result, results=shrunk)),
                         result.out_dir)
    assert f"{n // 2:,} (subset of {n:,})" in md
    assert "Trained on a stratified subset" in md


def test_bad_requests_are_user_errors(tiny, tmp_path):
    train, test = tiny
    with pytest.raises(FmnistError, match="known models"):
        compare(train, test, tmp_path, models=["no-such-model"], with_explore=False)
    with pytest.raises(FmnistError, match="quick"):
        compare(train, test, tmp_path, preset="fastest", with_explore=False)
    with pytest.raises(FmnistError, match="twice"):
        compare(train, test, tmp_path, models=["knn", "knn"], with_explore=False)


@pytest.mark.data  # the official dataset, loaded by the command itself
def test_compare_cli(tmp_path):
    out = tmp_path / "cli"
    runner = CliRunner()
    result = runner.invoke(app, ["compare", "--models", "bayes-1", "--train-size", "600",
                                 "--no-explore", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "report.html" in result.output and "best model: bayes-1" in result.output
    data = json.loads((out / "results.json").read_text())
    assert data["data"]["test_images"] == 10000  # always the official test set
    assert data["leaderboard"][0]["train_images"] == 600
    bad = runner.invoke(app, ["compare", "--models", " , ", "--out", str(out)])
    assert bad.exit_code != 0


def test_interrupted_neural_run_continues_from_its_checkpoint(tiny, tmp_path):
    train, test = tiny
    first = compare(train, test, tmp_path, models=["cnn"], with_explore=False,
                    log=lambda _: None).results[0]
    assert first.ok, first.error
    checkpoints = first.run_dir / "checkpoints"
    assert checkpoints.is_dir() and any(checkpoints.iterdir())
    (first.run_dir / "model.json").unlink()  # as if killed after the last epoch's checkpoint
    again = compare(train, test, tmp_path, models=["cnn"], with_explore=False,
                    log=lambda _: None).results[0]
    assert again.ok and not again.reused, again.error
    assert again.run_dir == first.run_dir
    assert again.evaluation.accuracy == pytest.approx(first.evaluation.accuracy)
    # Every epoch was already checkpointed: continuing trains no epoch again, and the recorded
    # fit time still counts the whole training (the first session's included).
    assert again.history == first.history
    assert again.evaluation.fit_seconds >= first.evaluation.fit_seconds


def test_report_leads_with_the_verdict_and_warns_about_quick_nets(first_run):
    """report.md: summary and leaderboard first, data analysis last; a quick comparison with
    neural models says they are under-trained by design and names the presets to use."""
    _, result = first_run
    md = render_markdown(build_report(result), result.out_dir)
    assert md.index("Best model:") < md.index("| rank |") < md.index("## Results")
    assert "under-trains" not in md  # no neural model ran
    nets = [dataclasses.replace(r, family="neural", params={**r.params, "epochs": 2})
            if r.ok else r for r in result.results]
    md = render_markdown(build_report(dataclasses.replace(result, results=nets)), result.out_dir)
    assert "under-trains its deep nets by design" in md and "--preset standard" in md
    assert md.index("under-trains") < md.index("## Results")


def test_convergence_warnings_are_recorded_not_printed(tiny, tmp_path, capfd):
    """A fit that stops at its iteration cap warns; the comparison keeps the warning with the
    model's result (results.json, the report) instead of printing it among its progress lines."""
    train, test = tiny
    spec = ModelSpec("logistic-1-iteration", "classical", "logistic regression, one iteration",
                     build="fmnist.models.classical:LogisticClassifier",
                     defaults={"max_iter": 1})
    with registered(spec):
        result = compare(train, test, tmp_path, models=[spec.name], with_explore=False,
                         log=print)
    captured = capfd.readouterr()
    assert "ConvergenceWarning" not in captured.out + captured.err
    (row,) = json.loads((tmp_path / "results.json").read_text())["leaderboard"]
    assert row["warnings"] and "max_iter" in row["warnings"][0]
    assert result.results[0].warnings == row["warnings"]
    assert "max\\_iter" in (tmp_path / "report.md").read_text(encoding="utf-8")
