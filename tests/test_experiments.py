"""helpers.experiments: the client populations and datasets of notebooks 06 and 07."""
import numpy as np
import pytest

from helpers import data, experiments as ex


@pytest.fixture(scope="module")
def writers():
    train_ids, _ = data.split_validation_writers(data.load_arrays()["client_ids"])
    return ex.writer_clients(train_ids[:12])


def test_writer_clients_hold_exactly_each_writers_training_images(train_data, writers):
    train_ids, _ = data.split_validation_writers(data.load_arrays()["client_ids"])
    for cid, pixels, labels in zip(train_ids[:12], writers.pixels, writers.labels):
        through_tff = list(train_data.create_tf_dataset_for_client(cid).as_numpy_iterator())
        assert sorted(labels.tolist()) == sorted(int(e["label"]) for e in through_tff)
        np.testing.assert_allclose(np.sort(pixels.astype(np.float32).ravel() / 255.0),
                                   np.sort(np.concatenate([e["pixels"].ravel() for e in through_tff])), atol=1e-7)


def test_unknown_writer_is_named():
    with pytest.raises(data.UnknownClientError, match="nobody"):
        ex.writer_clients(["nobody"])


@pytest.mark.parametrize("alpha", [0.05, 1.0, 100.0])
def test_partitions_deal_every_image_exactly_once(writers, alpha):
    labels = np.concatenate(writers.labels)
    for parts in (ex.iid_parts(len(labels), 7, seed=3), ex.dirichlet_parts(labels, 7, alpha, seed=3)):
        everything = np.concatenate(parts)
        assert len(everything) == len(labels) == len(np.unique(everything))
        assert all(len(p) > 0 for p in parts), "no empty client"
    again = ex.dirichlet_parts(labels, 7, alpha, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(again, ex.dirichlet_parts(labels, 7, alpha, seed=3))), "seeded"


def test_small_alpha_skews_labels_and_redeal_keeps_the_images(writers):
    labels = np.concatenate(writers.labels)
    skewed = ex.redeal(writers, ex.dirichlet_parts(labels, 10, 0.1, seed=0))
    even = ex.redeal(writers, ex.iid_parts(len(labels), 10, seed=0))
    assert ex.label_share(skewed) > 0.4 > 0.2 > ex.label_share(even)
    assert sorted(np.concatenate(skewed.labels).tolist()) == sorted(labels.tolist())
    with pytest.raises(ValueError, match="alpha"):
        ex.dirichlet_parts(labels, 10, 0.0)


def test_client_dataset_is_the_course_pipeline_and_a_deadline_cuts_it(writers):
    full = list(ex.client_dataset(writers, 0, epochs=2, batch_size=20, seed=1))
    assert sum(len(b["y"]) for b in full) == 2 * len(writers.labels[0])
    first = full[0]
    assert first["x"].shape[1:] == (28, 28, 1) and first["x"].dtype.name == "float32"
    assert 0.0 <= float(np.min(first["x"])) and float(np.max(first["x"])) <= 1.0
    cut = list(ex.client_dataset(writers, 0, epochs=2, batch_size=20, seed=1, max_batches=2))
    assert len(cut) == 2 and all(np.array_equal(a["y"], b["y"]) for a, b in zip(cut, full))
    with pytest.raises(data.UnknownClientError, match="0..11"):
        ex.client_dataset(writers, 12)


def test_sampling_is_repeatable_and_respects_eligibility():
    assert ex.sample(50, 5, 3, seed=1) == ex.sample(50, 5, 3, seed=1) != ex.sample(50, 5, 4, seed=1)
    assert set(ex.sample(50, 3, 0, eligible=[7, 8, 9])) == {7, 8, 9}
    with pytest.raises(ValueError, match="only 3 clients"):
        ex.sample(50, 4, 0, eligible=[7, 8, 9])


def test_rounds_to_target():
    assert ex.rounds_to([0.1, 0.5, 0.8, 0.7, 0.9], 0.8) == 2
    assert ex.rounds_to([0.1, 0.5], 0.8) is None
