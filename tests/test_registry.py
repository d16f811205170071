"""fmnist.models.registry and the catalogue: lazy builders, the query API, and a light start-up.

Fast tier: no dataset needed.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression

from fmnist.errors import FmnistError
from fmnist.models import create_model, get_spec, is_model, list_models, register, registered
from fmnist.models.registry import REGISTRY, ModelSpec


def test_listing_models_imports_no_model_code() -> None:
    """The catalogue declares builders as import strings: listing and looking up every model
    loads neither torch, scikit-learn nor scikit-image (what keeps `fmnist models` fast)."""
    code = ("import sys; from fmnist.models import list_models, get_spec; "
            "[get_spec(s.name) for s in list_models()]; "
            "print(sorted(m for m in ('torch', 'sklearn', 'skimage', 'scipy', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


@pytest.mark.parametrize("name", [s.name for s in list_models()])
def test_every_builder_resolves_to_an_estimator(name: str) -> None:
    """Each import string names a real builder; defaults and quick settings are parameters of
    the model (or of its members, for an ensemble)."""
    model = create_model(name)
    assert isinstance(model, BaseEstimator)
    params = {k.rpartition("__")[2] for k in model.get_params(deep=True)}
    spec = get_spec(name)
    for key in [*spec.defaults, *spec.quick]:
        assert key in params, (name, key)


def test_query_api() -> None:
    assert is_model("knn") and not is_model("knn2")
    assert [s.name for s in list_models("*svm")] == ["hog-svm", "linear-svm", "svm"]
    names = [s.name for s in list_models()]
    assert names.index("cnn") < names.index("knn")  # neural first
    with pytest.raises(FmnistError, match="unknown model 'nope'.*known models: .*knn"):
        get_spec("nope")


def test_registered_restores_the_registry() -> None:
    before = dict(REGISTRY)
    spec = ModelSpec("tmp-logistic", "classical", "a test entry",
                     build="sklearn.linear_model:LogisticRegression")
    with registered(spec):
        assert isinstance(create_model("tmp-logistic"), LogisticRegression)
    assert before == REGISTRY


def test_bad_registrations_are_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register(ModelSpec("knn", "classical", "duplicate", build=LogisticRegression))
    with pytest.raises(ValueError, match="module:attribute"):
        register(ModelSpec("tmp-bad", "classical", "no colon", build="sklearn.svm"))
    assert not is_model("tmp-bad")
