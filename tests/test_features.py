"""Preprocessing transformers: scaling, PCA's three size rules, Fisher LDA, HOG, `reduce` specs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from fmnist.errors import FmnistError
from fmnist.models.features import (
    HOGTransformer,
    PCAReducer,
    PixelScaler,
    ReduceSpec,
    fisher_lda,
    parse_reduce,
    reduce_steps,
)


def test_unit_scaling_flattens_and_divides_by_255(small_train):
    X = small_train.images
    out = PixelScaler("unit").fit_transform(X)
    assert out.dtype == np.float32 and out.shape == (len(X), 28 * 28)
    np.testing.assert_allclose(out, X.reshape(len(X), -1) / 255.0, rtol=1e-6)


def test_standard_scaling_centres_varying_pixels_and_keeps_constant_ones_finite():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(50, 4, 4)).astype(np.uint8)
    X[:, 0, 0] = 7  # a pixel that never varies
    out = PixelScaler("standard").fit_transform(X)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[:, 0], 0.0)
    np.testing.assert_allclose(out[:, 1:].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out[:, 1:].std(axis=0), 1.0, rtol=1e-4)


def test_bad_scale_is_a_user_error():
    with pytest.raises(FmnistError, match="unknown scale 'percent'"):
        PixelScaler("percent").fit(np.zeros((3, 2, 2), np.uint8))


def test_image_size_mismatch_at_transform_is_refused(small_train):
    scaler = PixelScaler().fit(small_train.images)
    with pytest.raises(ValueError, match="features"):
        scaler.transform(np.zeros((2, 32, 32), np.uint8))


@pytest.fixture(scope="module")
def pixels(small_train) -> np.ndarray:
    return PixelScaler().fit_transform(small_train.images)


def test_pca_keeps_the_requested_variance_with_the_fewest_components(pixels):
    pca = PCAReducer(n_components=0.95).fit(pixels)
    kept = np.cumsum(pca.explained_variance_ratio_)
    assert kept[-1] >= 0.95 and kept[-2] < 0.95
    assert pca.transform(pixels).shape == (len(pixels), pca.n_components_)


def test_pca_with_a_count_keeps_that_many(pixels):
    assert PCAReducer(n_components=50).fit_transform(pixels).shape == (len(pixels), 50)


def test_pca_count_larger_than_the_data_allows_is_clamped():
    X = np.random.default_rng(0).normal(size=(5, 8))
    assert PCAReducer(n_components=50).fit(X).n_components_ == 5


def test_pca_by_max_error_bounds_the_reconstruction_error_with_fewest_components(pixels):
    bound = 0.004
    pca = PCAReducer(max_error=bound).fit(pixels)
    reconstructed = pca.inverse_transform(pca.transform(pixels))
    mse = float(np.mean((reconstructed - pixels) ** 2))
    assert mse <= bound
    # the stated error is the sample-variance version of the same quantity
    np.testing.assert_allclose(mse, pca.reconstruction_error_ * (len(pixels) - 1) / len(pixels),
                               rtol=1e-3)
    smaller = PCAReducer(n_components=pca.n_components_ - 1).fit(pixels)
    assert smaller.reconstruction_error_ > bound


def test_fisher_lda_projects_to_c_minus_1_dimensions_despite_singular_scatter(small_train,
                                                                              pixels):
    assert np.any(pixels.std(axis=0) == 0)  # some border pixels never vary in this subset
    Z = fisher_lda().fit(pixels, small_train.labels).transform(pixels)
    assert Z.shape == (len(pixels), 9)
    assert np.all(np.isfinite(Z))


def test_hog_features_of_images_and_of_flat_rows_agree(small_train):
    images = small_train.images[:20]
    from_images = HOGTransformer().fit_transform(images)
    assert from_images.shape == (20, 1296)  # 6×6 blocks × 2×2 cells × 9 orientations
    from_rows = HOGTransformer().fit_transform(images.reshape(20, -1))
    np.testing.assert_array_equal(from_images, from_rows)


def test_hog_needs_an_image_shape_for_non_square_rows():
    with pytest.raises(FmnistError, match="image_shape"):
        HOGTransformer().fit(np.zeros((3, 24)))
    assert HOGTransformer(image_shape=(4, 6), pixels_per_cell=2).fit(np.zeros((3, 24)))


@pytest.mark.parametrize(("text", "expected"), [
    ("none", ReduceSpec("none")),
    ("lda", ReduceSpec("lda")),
    ("pca:0.95", ReduceSpec("pca", n_components=0.95)),
    ("pca:50", ReduceSpec("pca", n_components=50)),
    ("PCA:mse=0.002", ReduceSpec("pca", max_error=0.002)),
])
def test_reduce_specs_parse(text, expected):
    assert parse_reduce(text) == expected


@pytest.mark.parametrize("text", ["pca", "pca:0", "pca:1.5", "pca:-3", "pca:mse=-1", "ica:5",
                                  "pca:abc"])
def test_bad_reduce_specs_say_what_is_accepted(text):
    with pytest.raises(FmnistError, match="pca:0.95"):
        parse_reduce(text)


def test_reduce_steps_build_the_named_transformers():
    assert reduce_steps("none") == []
    (name, step), = reduce_steps("pca:mse=0.01")
    assert name == "pca" and step.max_error == 0.01
    (name, step), = reduce_steps("lda")
    assert name == "lda" and step.shrinkage == "auto"


@parametrize_with_checks([PixelScaler(), PixelScaler("standard"), PCAReducer(n_components=2)])
def test_transformers_follow_the_sklearn_estimator_contract(estimator, check):
    check(estimator)
