import shutil
import time

import numpy as np
import pytest

from helpers import data


@pytest.fixture(scope="module")
def digits():
    return data.load_federated_digits()


def test_shipped_file_matches_its_recorded_checksum():
    assert data.verify_data_file() == data.DATA_FILE
    readme = (data.DATA_DIR / "README.md").read_text()
    assert data.DATA_SHA256 in readme


def test_missing_file_says_which_and_how_to_restore(tmp_path):
    missing = tmp_path / "femnist_digits_subset.npz"
    with pytest.raises(data.DataError, match="is missing") as err:
        data.load_arrays(missing)
    assert str(missing) in str(err.value) and "git checkout" in str(err.value)


@pytest.mark.parametrize("damage", ["truncate", "flip_byte"])
def test_damaged_file_is_refused_with_its_name(tmp_path, damage):
    copy = tmp_path / "femnist_digits_subset.npz"
    shutil.copy(data.DATA_FILE, copy)
    raw = bytearray(copy.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    else:
        raw[len(raw) // 2] ^= 0xFF
    copy.write_bytes(bytes(raw))
    with pytest.raises(data.DataError, match="damaged or altered") as err:
        data.load_federated_digits(path=copy, cache_dir=tmp_path / "cache")
    assert str(copy) in str(err.value) and "git checkout" in str(err.value)


def test_federated_splits_have_the_documented_shape(digits):
    assert len(digits.train.client_ids) == 104
    assert sorted(digits.test.client_ids) == sorted(digits.train.client_ids)  # per-writer split
    assert len(digits.heldout.client_ids) == 74
    assert not set(digits.heldout.client_ids) & set(digits.train.client_ids)
    spec = digits.train.element_type_structure
    assert spec["pixels"].shape == (28, 28) and spec["label"].shape == ()


def test_every_example_arrives_through_tff_with_its_writer(digits):
    arrays = data.load_arrays()
    ids = arrays["client_ids"]
    total = 0
    for writer in digits.train.client_ids[:10]:
        examples = list(digits.train.create_tf_dataset_for_client(writer).as_numpy_iterator())
        mine = arrays["train_client"] == list(ids).index(writer)
        assert len(examples) == mine.sum()
        np.testing.assert_array_equal(sorted(e["label"] for e in examples), sorted(arrays["train_labels"][mine]))
        total += len(examples)
    first = next(digits.heldout.create_tf_dataset_for_client(digits.heldout.client_ids[0]).as_numpy_iterator())
    assert first["pixels"].dtype == np.float32 and 0.0 <= first["pixels"].min() and first["pixels"].max() == 1.0
    assert total > 0


def test_pooled_arrays_and_model_input_convention():
    x, y = data.pooled("train")
    assert x.shape == (10596, 28, 28) and y.shape == (10596,) and set(np.unique(y)) == set(range(10))
    assert np.median(x) == 1.0  # mostly white background, as in TFF's EMNIST
    inputs = data.to_model_input(x[:5]).numpy()
    assert inputs.shape == (5, 28, 28, 1)
    np.testing.assert_allclose(inputs[..., 0], 1.0 - x[:5])
    with pytest.raises(ValueError, match="Unknown split"):
        data.pooled("validation")


def test_unknown_client_ids_are_named(digits):
    with pytest.raises(data.UnknownClientError) as err:
        data.check_client_ids(digits.train, [digits.train.client_ids[0], "f9999_99"])
    assert "f9999_99" in str(err.value) and "client_ids" in str(err.value)
    # a held-out writer is not a training client
    with pytest.raises(data.UnknownClientError):
        data.check_client_ids(digits.train, digits.heldout.client_ids[:1])
    assert data.check_client_ids(digits.train, digits.train.client_ids[:2]) == digits.train.client_ids[:2]


def test_offline_download_fails_fast_and_clearly(monkeypatch, tmp_path):
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    monkeypatch.setattr(data, "EMNIST_URL", "http://127.0.0.1:9/emnist_all.sqlite.lzma")
    start = time.monotonic()
    with pytest.raises(data.DataError, match="cannot be reached") as err:
        data.check_online(data.EMNIST_URL, timeout=5)
    assert time.monotonic() - start < 10
    assert "127.0.0.1:9" in str(err.value) and "shipped" in str(err.value)


def test_full_emnist_offline_raises_instead_of_hanging(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "EMNIST_URL", "http://127.0.0.1:9/emnist_all.sqlite.lzma")
    with pytest.raises(data.DataError, match="cannot be reached"):
        data.load_federated_digits(source="emnist", cache_dir=tmp_path)


def test_unknown_source_is_refused():
    with pytest.raises(ValueError, match="shipped"):
        data.load_federated_digits(source="mnist")


def test_validation_writers_are_a_fixed_disjoint_subset():
    ids = [f"w{i:03d}" for i in range(104)]
    train, validation = data.split_validation_writers(list(reversed(ids)))
    assert len(validation) == data.VALIDATION_WRITERS and len(train) == 104 - data.VALIDATION_WRITERS
    assert not set(train) & set(validation) and set(train) | set(validation) == set(ids)
    assert (train, validation) == data.split_validation_writers(ids), "the same writers whatever the order"
    with pytest.raises(ValueError, match="num_validation"):
        data.split_validation_writers(ids, num_validation=104)


def test_pooled_writers_are_exactly_those_writers_examples(digits):
    train_ids, validation_ids = data.split_validation_writers(digits.train.client_ids)
    x, y = data.pooled("train", client_ids=validation_ids)
    theirs = [e for cid in validation_ids for e in digits.train.create_tf_dataset_for_client(cid).as_numpy_iterator()]
    assert len(y) == len(theirs)
    np.testing.assert_array_equal(np.sort(y), np.sort([e["label"] for e in theirs]))
    np.testing.assert_allclose(np.sort(x.sum(axis=(1, 2))), np.sort([e["pixels"].sum() for e in theirs]), rtol=1e-5)
    held_x, _ = data.pooled("heldout", client_ids=digits.heldout.client_ids[:2])
    assert 0 < len(held_x) < 779
    with pytest.raises(data.UnknownClientError, match="f9999_99"):
        data.pooled("test", client_ids=["f9999_99"])
