"""helpers.populations: clients held in memory, re-dealt, and their datasets through the pipeline."""
import collections

import numpy as np
import pytest
import tensorflow as tf

from helpers import data, populations
from helpers.fedavg import sample_clients


@pytest.fixture(scope="module")
def writers():
    train_ids, _ = data.split_validation_writers(data.load_arrays()["client_ids"])
    return populations.writer_clients(train_ids[:12])


def test_writer_clients_hold_exactly_each_writers_training_images(train_data, writers):
    train_ids, _ = data.split_validation_writers(data.load_arrays()["client_ids"])
    for cid, pixels, labels in zip(train_ids[:12], writers.pixels, writers.labels):
        through_tff = list(train_data.create_tf_dataset_for_client(cid).as_numpy_iterator())
        assert sorted(labels.tolist()) == sorted(int(e["label"]) for e in through_tff)
        np.testing.assert_allclose(np.sort(pixels.astype(np.float32).ravel() / 255.0),
                                   np.sort(np.concatenate([e["pixels"].ravel() for e in through_tff])), atol=1e-7)


def test_unknown_writer_is_named():
    with pytest.raises(data.UnknownClientError, match="nobody"):
        populations.writer_clients(["nobody"])


@pytest.mark.parametrize("alpha", [0.05, 1.0, 100.0])
def test_partitions_deal_every_image_exactly_once(writers, alpha):
    labels = np.concatenate(writers.labels)
    dealt = populations.iid_partition(len(labels), 7, seed=3), populations.dirichlet_parts(labels, 7, alpha, seed=3)
    for parts in dealt:
        assert len(parts) == 7, "seven clients asked for, seven dealt (here no client is left empty)"
        assert min(len(p) for p in parts) > 0, "no empty client"
        everything = np.concatenate(parts)
        assert len(everything) == len(labels) == len(np.unique(everything))
    again = populations.dirichlet_parts(labels, 7, alpha, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(again, dealt[1])), "seeded"


def test_dirichlet_parts_drop_the_clients_left_empty():
    """Five images over 40 clients: most clients get none; those are dropped (they could not train),
    the others keep every image between them."""
    labels = np.array([0, 1, 2, 3, 4])
    parts = populations.dirichlet_parts(labels, 40, 0.5, seed=0)
    assert 1 <= len(parts) <= 5 and min(len(p) for p in parts) > 0
    assert sorted(np.concatenate(parts).tolist()) == [0, 1, 2, 3, 4]


def test_small_alpha_skews_labels_and_redeal_keeps_the_images(writers):
    labels = np.concatenate(writers.labels)
    skewed_parts = populations.dirichlet_parts(labels, 10, 0.1, seed=0)
    even_parts = populations.iid_partition(len(labels), 10, seed=0)
    concentration = populations.label_concentration
    assert concentration(skewed_parts, labels) > 0.4 > 0.2 > concentration(even_parts, labels)
    skewed = populations.redeal(writers, skewed_parts)
    assert sorted(np.concatenate(skewed.labels).tolist()) == sorted(labels.tolist())
    assert all(np.array_equal(labels[p], y) for p, y in zip(skewed_parts, skewed.labels))
    with pytest.raises(ValueError, match="alpha"):
        populations.dirichlet_parts(labels, 10, 0.0)


def test_client_dataset_is_the_course_pipeline_and_a_deadline_cuts_it(writers):
    full = list(populations.client_dataset(writers, 0, epochs=2, batch_size=20, seed=1))
    # data.preprocess on the same images, in TFF's convention (float pixels, 1.0 = background)
    as_tff = tf.data.Dataset.from_tensor_slices(collections.OrderedDict(
        label=writers.labels[0], pixels=writers.pixels[0].astype(np.float32) / 255.0))
    expected = list(data.preprocess(as_tff, batch_size=20, epochs=2, seed=1))
    assert [len(b["y"]) for b in full] == [len(b["y"]) for b in expected]
    assert sum(len(b["y"]) for b in full) == 2 * len(writers.labels[0])
    for got, want in zip(full, expected):
        np.testing.assert_array_equal(got["y"], want["y"])
        np.testing.assert_allclose(got["x"], want["x"], atol=1e-7)
    assert full[0]["x"].shape[1:] == (28, 28, 1) and full[0]["x"].dtype.name == "float32"
    cut = list(populations.client_dataset(writers, 0, epochs=2, batch_size=20, seed=1, max_batches=2))
    assert len(cut) == 2 and all(np.array_equal(a["y"], b["y"]) for a, b in zip(cut, full))
    with pytest.raises(data.UnknownClientError, match="0..11"):
        populations.client_dataset(writers, 12)


def test_sampling_is_repeatable_and_draws_from_the_given_ids():
    assert sample_clients(range(50), 5, 3, seed=1) == sample_clients(range(50), 5, 3, seed=1)
    assert sample_clients(range(50), 5, 3, seed=1) != sample_clients(range(50), 5, 4, seed=1)
    assert set(sample_clients([7, 8, 9], 3, 0, seed=0)) == {7, 8, 9}
    with pytest.raises(ValueError, match="larger sample"):
        sample_clients([7, 8, 9], 4, 0, seed=0)


def test_partitions_separate_quantity_from_label_skew():
    labels = np.repeat(np.arange(10), 60)
    equal = populations.label_skew_parts(labels, 12, 0.1, seed=0)
    assert sorted(np.concatenate(equal).tolist()) == list(range(600)), "every image dealt exactly once"
    assert {len(p) for p in equal} == {50}
    skewed = populations.label_concentration(equal, labels)
    balanced = populations.label_concentration(populations.label_skew_parts(labels, 12, 100, seed=0), labels)
    assert skewed > 0.5 > 0.25 > balanced
    sized = populations.sized_iid_parts([5, 100, 495], seed=0)
    assert [len(p) for p in sized] == [5, 100, 495] and len(set(np.concatenate(sized))) == 600
    with pytest.raises(ValueError, match="alpha must be positive"):
        populations.label_skew_parts(labels, 12, 0.0)
