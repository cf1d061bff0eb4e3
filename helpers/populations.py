"""Client populations held in memory: the writers themselves, or the same images re-dealt IID,
by Dirichlet(α) label skew or by size, and each client's dataset through the course's pipeline.

Clients here hold NumPy arrays instead of reading TFF's SQLite file for every round: the
experiments re-deal the same images many ways, and reading from memory keeps each run to a few
seconds. `iid_partition`, `label_mix` and `label_concentration` are saved from notebook 02.
"""
import collections

import numpy as np
import tensorflow as tf

from helpers import data

Clients = collections.namedtuple("Clients", ["pixels", "labels"])
Clients.__doc__ = """One client population: `pixels[cid]`, `labels[cid]` are client `cid`'s arrays,
for `cid` in 0..N-1. Pixels stay uint8 as shipped (255 = background) until the pipeline: a quarter
of the memory, and of what TFF serialises for every client dataset it is handed."""


def writer_clients(client_ids):
    """The natural partition: one client per writer in `client_ids`, holding that writer's
    training images."""
    arrays = data.load_arrays()
    index = {cid: i for i, cid in enumerate(data.split_writers("train", client_ids))}
    owner = arrays["train_client"]
    pixels, labels = arrays["train_pixels"], arrays["train_labels"].astype(np.int32)
    parts = [np.flatnonzero(owner == index[cid]) for cid in client_ids]
    return Clients([pixels[p] for p in parts], [labels[p] for p in parts])


def iid_partition(num_examples, num_clients, seed=0):
    """Indices of `num_examples` dealt out to `num_clients` at random, evenly."""
    order = np.random.default_rng(seed).permutation(num_examples)
    return np.array_split(order, num_clients)


def label_mix(parts, labels):
    """One row per client: the fraction of its images that show each digit."""
    counts = [np.bincount(labels[p], minlength=10) for p in parts]
    return np.array([c / max(c.sum(), 1) for c in counts])


def label_concentration(parts, labels):
    """Mean over clients of the share of their largest digit.

    0.1 = balanced, 1.0 = one digit each."""
    return label_mix(parts, labels).max(axis=1).mean()


def dirichlet_parts(labels, num_clients, alpha, seed=0):
    """Per-class shares over clients (notebook 02's convention): for each digit, its images are
    shared among the clients by proportions drawn from Dirichlet(alpha). Small alpha: each client
    holds a few digits. Clients left without any image are dropped (they could not train)."""
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    rng = np.random.default_rng(seed)
    parts = [[] for _ in range(num_clients)]
    for digit in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == digit))
        shares = rng.dirichlet(alpha * np.ones(num_clients))
        cuts = (np.cumsum(shares)[:-1] * len(members)).astype(int)
        for k, piece in enumerate(np.split(members, cuts)):
            parts[k].extend(piece)
    return [np.sort(np.array(p, dtype=np.int64)) for p in parts if p]


def sized_iid_parts(sizes, seed=0):
    """Quantity skew without label skew: clients of the given `sizes`, each holding images drawn at
    random from the pool (so every client's labels follow the pool's distribution)."""
    sizes = np.asarray(sizes, int)
    if (sizes < 1).any():
        raise ValueError(f"every client needs at least one image; got sizes down to {sizes.min()}")
    order = np.random.default_rng(seed).permutation(int(sizes.sum()))
    return [np.sort(part) for part in np.split(order, np.cumsum(sizes)[:-1])]


def label_skew_parts(labels, num_clients, alpha, seed=0):
    """Label skew without quantity skew: `num_clients` clients of equal size (±1), each drawing its
    labels from its own proportions ~ Dirichlet(alpha) over the digits, as long as the pool still
    holds them (a digit used up is redrawn from the client's other digits). Small alpha: few digits
    per client."""
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    digits = np.unique(labels)
    stock = {d: list(rng.permutation(np.flatnonzero(labels == d))) for d in digits}
    sizes = np.diff(np.linspace(0, len(labels), num_clients + 1).astype(int))
    parts = []
    for size in sizes:
        share = rng.dirichlet(alpha * np.ones(len(digits)))
        part = []
        while len(part) < size:
            left = np.array([len(stock[d]) > 0 for d in digits])
            weights = share * left
            weights = weights / weights.sum() if weights.sum() > 0 else left / left.sum()
            wanted = rng.multinomial(size - len(part), weights)
            for d, count in zip(digits, wanted):
                taken = min(count, len(stock[d]))
                part.extend(stock[d][:taken])
                del stock[d][:taken]
        parts.append(np.sort(np.array(part, dtype=np.int64)))
    return parts


def redeal(clients, parts):
    """The same images as `clients`, pooled and dealt out again by `parts` (lists of pooled
    indices)."""
    pixels, labels = np.concatenate(clients.pixels), np.concatenate(clients.labels)
    return Clients([pixels[p] for p in parts], [labels[p] for p in parts])


_base_datasets = {}


@tf.function
def _pipeline(base, epochs, batch_size, seed, max_batches):
    # Compiled once per dataset type: without tf.function every client, every round, would trace
    # data.preprocess again (about 17 ms each; notebook 05's appendix measures it).
    as_tff = base.map(lambda example: collections.OrderedDict(  # TFF's EMNIST convention
        label=example["label"], pixels=tf.cast(example["pixels"], tf.float32) / 255.0))
    return data.preprocess(as_tff, batch_size, epochs, seed=seed).take(max_batches)


def client_dataset(clients, cid, epochs=1, batch_size=20, seed=0, max_batches=None):
    """Client `cid`'s training data through the course's pipeline (`data.preprocess`), shuffled
    by `seed`; `max_batches` cuts its local work short (a deadline)."""
    check_client(clients, cid)
    key = (id(clients.labels[cid]), id(clients.pixels[cid]))
    if key not in _base_datasets:  # keyed by the arrays themselves: a re-dealt population gets new ones
        _base_datasets[key] = (clients, tf.data.Dataset.from_tensor_slices(
            collections.OrderedDict(label=clients.labels[cid], pixels=clients.pixels[cid])))
    base = _base_datasets[key][1]  # [0] keeps the arrays alive, so their ids are not reused
    limit = -1 if max_batches is None else max_batches
    return _pipeline(base, *(tf.constant(v, tf.int64) for v in (epochs, batch_size, seed, limit)))


def check_client(clients, cid):
    if not 0 <= cid < len(clients.labels):
        raise data.UnknownClientError(
            f"Unknown client {cid!r}: this population has clients 0..{len(clients.labels) - 1}.")


def element_spec(clients):
    return client_dataset(clients, 0).element_spec
