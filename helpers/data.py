"""The course's federated digits: verified on load, served as TFF `ClientData`.

The shipped file (data/femnist_digits_subset.npz, see data/README.md) holds real handwritten
digits with their writer ids. We write it once into the SQLite layout of TFF's federated EMNIST
and read it back through TFF's own loader, `tff.simulation.datasets.emnist.load_data`, so the
course's data arrives exactly as TFF's full EMNIST does; `source="emnist"` loads that full
dataset (3,383 writers) instead, when the machine is online.

Pixel convention everywhere (as TFF's EMNIST): float32 in [0, 1], 1.0 = white background.
The model input is `to_model_input(pixels)`: ink = 1.0, shape (..., 28, 28, 1).
"""
import collections
import hashlib
import os
import sqlite3
import urllib.request
from functools import lru_cache
from pathlib import Path

import numpy as np
import tensorflow as tf

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DATA_FILE = DATA_DIR / "femnist_digits_subset.npz"
DATA_SHA256 = "cf6ad7e188ee5010f6f23ff4720e32f16d065bbe48142725c37c1fa09aa4ee16"
CACHE_DIR = DATA_DIR / "cache"  # git-ignored; rebuilt from the .npz in about a second
CACHE_LAYOUT = "v2"  # bump when _write_emnist_sqlite changes, so old caches are not reused

# TFF's names for the two digit splits, plus ours for the writers that have no training data.
SPLITS = {"train": "digits_only_train", "test": "digits_only_test", "heldout": "digits_only_heldout"}
EMNIST_URL = "https://storage.googleapis.com/tff-datasets-public/emnist_all.sqlite.lzma"

FederatedDigits = collections.namedtuple("FederatedDigits", ["train", "test", "heldout"])
FederatedDigits.__doc__ = """ClientData for the training writers, their own test examples, and
unseen writers (`heldout` is None for full EMNIST, which has no such split)."""


class DataError(RuntimeError):
    """The course's data is missing, damaged, or cannot be downloaded."""


class UnknownClientError(KeyError):
    """A client id that the ClientData does not hold."""

    def __str__(self):  # KeyError would print the message with quotes around it
        return self.args[0]


def _restore_hint(path):
    return (
        f"Restore it with `git checkout -- {os.path.relpath(path)}` from the course's repository "
        f"(or download the repository again); data/README.md records its sha256."
    )


def verify_data_file(path=DATA_FILE, sha256=DATA_SHA256):
    """Check the file exists and its sha256 is the expected one; return its Path."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"The course's data file {path} is missing. {_restore_hint(path)}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise DataError(
            f"The course's data file {path} is damaged or altered: its sha256 is {digest[:16]}…, "
            f"expected {sha256[:16]}…. {_restore_hint(path)}"
        )
    return path


@lru_cache(maxsize=4)
def load_arrays(path=DATA_FILE, sha256=DATA_SHA256):
    """All arrays of the shipped file, after its checksum is verified (see data/README.md)."""
    path = verify_data_file(path, sha256)
    with np.load(path) as npz:
        return {key: npz[key] for key in npz.files}


def pooled(split, path=DATA_FILE, sha256=DATA_SHA256, *, client_ids=None):
    """(pixels, labels) of one split with every writer pooled, for centralised training.

    pixels: float32 (N, 28, 28) in TFF's convention; labels: int32 (N,).
    client_ids: only these writers' examples (e.g. the validation writers), else every writer's.
    """
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; choose one of {sorted(SPLITS)}.")
    arrays = load_arrays(path, sha256)
    pixels, labels = arrays[f"{split}_pixels"], arrays[f"{split}_labels"]
    if client_ids is not None:
        writers = split_writers(split, client_ids, path, sha256)
        chosen = np.isin(writers[arrays[f"{split}_client"]], list(client_ids))
        pixels, labels = pixels[chosen], labels[chosen]
    return pixels.astype(np.float32) / 255.0, labels.astype(np.int32)


def split_writers(split, client_ids=(), path=DATA_FILE, sha256=DATA_SHA256):
    """The writer ids of one split of the shipped file (`{split}_client` indexes them); raises
    `UnknownClientError` naming any of `client_ids` that the split does not hold."""
    arrays = load_arrays(path, sha256)
    writers = arrays["heldout_client_ids" if split == "heldout" else "client_ids"]
    unknown = sorted(set(client_ids) - set(writers))
    if unknown:
        raise UnknownClientError(f"Unknown client id(s) {unknown[:5]} in the {split!r} split, which holds "
                                 f"{len(writers)} writers, e.g. {sorted(writers)[:3]}.")
    return writers


def to_model_input(pixels):
    """TFF-convention pixels (1.0 = background) -> model input: ink = 1.0, shape (..., 28, 28, 1).

    Inverting puts the background at zero, as in MNIST, so zero padding and ReLUs see "no ink".
    Works on NumPy arrays and tensors alike.
    """
    pixels = tf.convert_to_tensor(pixels, tf.float32)
    return tf.expand_dims(1.0 - pixels, axis=-1)


def _write_emnist_sqlite(arrays, db_path):
    """Write the shipped arrays in the SQLite layout of TFF's `emnist_all.sqlite`."""
    tmp_path = Path(f"{db_path}.tmp{os.getpid()}")
    tmp_path.unlink(missing_ok=True)
    con = sqlite3.connect(tmp_path)
    con.execute("CREATE TABLE examples (split_name TEXT, client_id TEXT, serialized_example_proto BLOB)")
    con.execute("CREATE TABLE client_metadata (client_id TEXT, split_name TEXT, num_examples INTEGER)")
    for split, split_name in SPLITS.items():
        ids = arrays["heldout_client_ids" if split == "heldout" else "client_ids"]
        owner = arrays[f"{split}_client"]
        pixels = arrays[f"{split}_pixels"].astype(np.float32) / 255.0
        rows = []
        for pix, label, idx in zip(pixels, arrays[f"{split}_labels"], owner):
            example = tf.train.Example(features=tf.train.Features(feature={
                "pixels": tf.train.Feature(float_list=tf.train.FloatList(value=pix.ravel())),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
            }))
            rows.append((split_name, str(ids[idx]), example.SerializeToString()))
        con.executemany("INSERT INTO examples VALUES (?, ?, ?)", rows)
        counts = np.bincount(owner, minlength=len(ids))
        con.executemany(
            "INSERT INTO client_metadata VALUES (?, ?, ?)",
            [(str(cid), split_name, int(n)) for cid, n in zip(ids, counts) if n > 0],
        )
    # TFF selects one client's examples by (client_id, split_name): without an index every
    # client dataset (and every local epoch) would scan the whole table.
    con.execute("CREATE INDEX examples_by_client ON examples (client_id, split_name)")
    con.commit()
    con.close()
    os.replace(tmp_path, db_path)  # atomic: a reader never sees a half-written file


def _shipped_cache_dir(path, sha256, cache_dir):
    """Cache folder holding emnist_all.sqlite built from the shipped file (keyed by checksum)."""
    arrays = load_arrays(path, sha256)
    folder = Path(cache_dir or CACHE_DIR) / f"{sha256[:12]}-{CACHE_LAYOUT}"
    db_path = folder / "emnist_all.sqlite"
    if not db_path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        _write_emnist_sqlite(arrays, db_path)
    return folder


def check_online(url=None, timeout=10.0):
    """Raise `DataError` within `timeout` s unless `url` (default: TFF's EMNIST file) answers."""
    url = url or EMNIST_URL
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            pass
    except OSError as err:  # URLError, timeouts, refused connections
        raise DataError(
            f"Full federated EMNIST must be downloaded (about 170 MB) from {url}, and that "
            f"address cannot be reached from this machine ({err}). Use the shipped writers "
            f"(source='shipped', the default), or copy emnist_all.sqlite from an online machine "
            f"into the cache folder (default ~/.tff)."
        ) from None


def shipped_database(cache_dir=None):
    """Path of the SQLite file the shipped writers are read from. Client datasets name this path,
    so an executor worker on another machine needs the file at the same place (notebook 09)."""
    return _shipped_cache_dir(DATA_FILE, DATA_SHA256, cache_dir) / "emnist_all.sqlite"


def _parse_example(serialized):
    """tf.train.Example -> {'label': int32, 'pixels': float32 (28, 28)}, as TFF's EMNIST."""
    spec = {
        "pixels": tf.io.FixedLenFeature(shape=(28, 28), dtype=tf.float32),
        "label": tf.io.FixedLenFeature(shape=(), dtype=tf.int64),
    }
    parsed = tf.io.parse_example(serialized, spec)
    return collections.OrderedDict(label=tf.cast(parsed["label"], tf.int32), pixels=parsed["pixels"])


def load_federated_digits(source="shipped", cache_dir=None, path=DATA_FILE, sha256=DATA_SHA256):
    """Federated digits as TFF ClientData: `FederatedDigits(train, test, heldout)`.

    source="shipped" (default, offline): the course's 104 training writers, their own test
        examples, and 74 unseen writers, verified by checksum.
    source="emnist": TFF's full federated EMNIST digits (3,383 writers; needs a download of about
        170 MB the first time, into `cache_dir`, default ~/.tff). `heldout` is None.
    Each client's dataset yields OrderedDict(label=int32, pixels=float32 (28, 28)).
    """
    import tensorflow_federated as tff

    if source == "shipped":
        folder = _shipped_cache_dir(path, sha256, cache_dir)
    elif source == "emnist":
        folder = Path(cache_dir or Path.home() / ".tff")
        if not (folder / "emnist_all.sqlite").is_file():
            check_online()
    else:
        raise ValueError(f"Unknown source {source!r}: use 'shipped' (offline, default) or 'emnist'.")
    train, test = tff.simulation.datasets.emnist.load_data(only_digits=True, cache_dir=str(folder))
    heldout = None
    if source == "shipped":
        heldout = tff.simulation.datasets.SqlClientData(
            str(folder / "emnist_all.sqlite"), SPLITS["heldout"]
        ).preprocess(lambda ds: ds.map(_parse_example))
    return FederatedDigits(train, test, heldout)


#: Training writers held out to choose hyper-parameters on (notebook 05, scripts/tune_fedavg.py).
VALIDATION_WRITERS = 14


def split_validation_writers(client_ids, num_validation=VALIDATION_WRITERS, seed=0):
    """(training ids, validation ids): `num_validation` of `client_ids` held out, chosen at random
    (seeded, so always the same ones). Validation writers never train; hyper-parameters are chosen
    on their examples, and the test split stays untouched until the final check."""
    client_ids = sorted(client_ids)
    if not 0 < num_validation < len(client_ids):
        raise ValueError(f"num_validation must be between 1 and {len(client_ids) - 1}, got {num_validation}")
    chosen = set(np.random.default_rng(seed).choice(client_ids, num_validation, replace=False))
    return [c for c in client_ids if c not in chosen], [c for c in client_ids if c in chosen]


def check_client_ids(client_data, client_ids):
    """Raise `UnknownClientError` naming every id that `client_data` does not hold."""
    known = set(client_data.client_ids)
    unknown = [cid for cid in client_ids if cid not in known]
    if unknown:
        raise UnknownClientError(
            f"Unknown client id(s) {unknown[:5]}{' …' if len(unknown) > 5 else ''}: this ClientData "
            f"holds {len(known)} clients, e.g. {sorted(known)[:3]}. Pick ids from `client_data.client_ids` "
            f"(training writers and held-out writers are different ClientData objects)."
        )
    return list(client_ids)


def client_dataset_options():
    """tf.data options for every client dataset handed to TFF: no graph rewrites, no autotuning.

    TFF's worker optimises each client's dataset graph again on every call; for a pipeline this
    small that costs more than it saves: with these options a one-example client costs about half
    as much (notebook 09 measures it)."""
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    options.autotune.enabled = False
    return options


def preprocess(dataset, batch_size=20, epochs=1, shuffle_buffer=512, seed=None):
    """One client's pipeline, as taught in notebook 02: shuffle, repeat for local
    epochs, batch, convert pixels to model input, prefetch, with the options TFF runs it
    fastest with. Yields OrderedDict(x=(B, 28, 28, 1) float32 with ink = 1.0,
    y=(B,) int32): what `helpers.model.create_model` expects.

    `seed` fixes the shuffle order (every pass over the dataset reshuffles,
    reproducibly).
    """

    def to_model_batch(batch):
        return collections.OrderedDict(
            x=to_model_input(batch["pixels"]), y=batch["label"]
        )

    return (
        dataset.shuffle(shuffle_buffer, seed=seed)
        .repeat(epochs)
        .batch(batch_size)
        .map(to_model_batch)
        .prefetch(tf.data.AUTOTUNE)
        .with_options(client_dataset_options())
    )
