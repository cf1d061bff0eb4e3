"""Plumbing for the small seeded experiments of notebook 06: clients made from the shipped
arrays (the writers themselves, or the same images re-dealt IID or by Dirichlet(α)), their
datasets, and one training loop that records the global model's accuracy every round.

Clients here hold NumPy arrays in memory instead of reading TFF's SQLite file for every round:
the experiments re-deal the same images many ways, and reading from memory keeps each run to a
few seconds. The pipeline is the course's (`data.preprocess`).
"""
import collections

import numpy as np
import tensorflow as tf

from helpers import data, runtime

Clients = collections.namedtuple("Clients", ["pixels", "labels"])
Clients.__doc__ = """One client population: `pixels[cid]`, `labels[cid]` are client `cid`'s arrays, for `cid`
in 0..N-1. Pixels stay uint8 as shipped (255 = background) until the pipeline: a quarter of the
memory, and of what TFF serialises for every client dataset it is handed."""

History = collections.namedtuple("History", ["accuracy", "weights"])
History.__doc__ = """accuracy[r]: the global model's accuracy on the evaluation images after round r
(accuracy[0]: before training); weights: the final global weights."""


def writer_clients(client_ids):
    """The natural partition: one client per writer in `client_ids`, holding that writer's training images."""
    arrays = data.load_arrays()
    index = {cid: i for i, cid in enumerate(data.split_writers("train", client_ids))}
    owner = arrays["train_client"]
    pixels, labels = arrays["train_pixels"], arrays["train_labels"].astype(np.int32)
    parts = [np.flatnonzero(owner == index[cid]) for cid in client_ids]
    return Clients([pixels[p] for p in parts], [labels[p] for p in parts])


def iid_parts(num_examples, num_clients, seed=0):
    """Indices dealt out evenly at random: every client sees the same label distribution."""
    return np.array_split(np.random.default_rng(seed).permutation(num_examples), num_clients)


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
        cuts = (np.cumsum(rng.dirichlet(alpha * np.ones(num_clients)))[:-1] * len(members)).astype(int)
        for k, piece in enumerate(np.split(members, cuts)):
            parts[k].extend(piece)
    return [np.sort(np.array(p, dtype=np.int64)) for p in parts if p]


def sized_iid_parts(sizes, seed=0):
    """Quantity skew without label skew: clients of the given `sizes`, each holding images drawn at random
    from the pool (so every client's labels follow the pool's distribution)."""
    sizes = np.asarray(sizes, int)
    if (sizes < 1).any():
        raise ValueError(f"every client needs at least one image; got sizes down to {sizes.min()}")
    order = np.random.default_rng(seed).permutation(int(sizes.sum()))
    return [np.sort(part) for part in np.split(order, np.cumsum(sizes)[:-1])]


def label_skew_parts(labels, num_clients, alpha, seed=0):
    """Label skew without quantity skew: `num_clients` clients of equal size (±1), each drawing its labels
    from its own proportions ~ Dirichlet(alpha) over the digits, as long as the pool still holds them
    (a digit used up is redrawn from the client's other digits). Small alpha: few digits per client."""
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
    """The same images as `clients`, pooled and dealt out again by `parts` (lists of pooled indices)."""
    pixels, labels = np.concatenate(clients.pixels), np.concatenate(clients.labels)
    return Clients([pixels[p] for p in parts], [labels[p] for p in parts])


def label_share(clients):
    """Mean over clients of the share of their most frequent digit: 0.1 = balanced, 1.0 = one digit each."""
    return float(np.mean([np.bincount(y, minlength=10).max() / len(y) for y in clients.labels]))


_base_datasets = {}


@tf.function
def _pipeline(base, epochs, batch_size, seed, max_batches):
    # Compiled once per dataset type: without tf.function every client, every round, would trace
    # data.preprocess again (about 17 ms each; notebook 05's appendix measures it).
    as_tff = base.map(lambda example: collections.OrderedDict(  # TFF's EMNIST convention, as data.pooled
        label=example["label"], pixels=tf.cast(example["pixels"], tf.float32) / 255.0))
    return data.preprocess(as_tff, batch_size, epochs, seed=seed).take(max_batches)


def client_dataset(clients, cid, epochs=1, batch_size=20, seed=0, max_batches=None):
    """Client `cid`'s training data through the course's pipeline (`data.preprocess`), shuffled by `seed`;
    `max_batches` cuts its local work short (a deadline)."""
    if not 0 <= cid < len(clients.labels):
        raise data.UnknownClientError(f"Unknown client {cid!r}: this population has clients 0..{len(clients.labels) - 1}.")
    key = (id(clients.labels[cid]), id(clients.pixels[cid]))
    if key not in _base_datasets:  # keyed by the arrays themselves: a re-dealt population gets new ones
        _base_datasets[key] = (clients, tf.data.Dataset.from_tensor_slices(
            collections.OrderedDict(label=clients.labels[cid], pixels=clients.pixels[cid])))
    base = _base_datasets[key][1]  # [0] keeps the arrays alive, so their ids are not reused
    return _pipeline(base, tf.constant(epochs, tf.int64), tf.constant(batch_size, tf.int64),
                     tf.constant(seed, tf.int64), tf.constant(-1 if max_batches is None else max_batches, tf.int64))


def element_spec(clients):
    return client_dataset(clients, 0).element_spec


def sample(num_clients, clients_per_round, round_num, seed=0, eligible=None):
    """`clients_per_round` distinct clients drawn for this round (repeatably), from `eligible` if given."""
    pool = np.arange(num_clients) if eligible is None else np.asarray(eligible)
    if clients_per_round > len(pool):
        raise ValueError(f"clients_per_round={clients_per_round} but only {len(pool)} clients can take part")
    return list(np.random.default_rng([seed, round_num]).choice(pool, clients_per_round, replace=False))


class Evaluator:
    """Accuracy of global weights on centrally held images (`pixels` in TFF's convention)."""

    def __init__(self, model_fn, pixels, labels):
        self.model_fn = model_fn
        self.inputs = data.to_model_input(pixels)
        self.labels = np.asarray(labels)
        self._new_model()

    def _new_model(self):
        self.model = self.model_fn()
        # Compiled once per model: about twice as fast as calling the Keras model eagerly.
        self._classify = tf.function(lambda x: tf.argmax(self.model(x, training=False), axis=-1),
                                     input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)])

    def copy(self):
        """The same images with a model of its own: one per thread when runs train side by side."""
        twin = Evaluator.__new__(Evaluator)
        twin.model_fn, twin.inputs, twin.labels = self.model_fn, self.inputs, self.labels
        twin._new_model()
        return twin

    def predictions(self, weights):
        try:
            return self._predict(weights)
        except ValueError:
            # Building a TFF learning process (tff.learning.algorithms.*) invalidates Keras models
            # made before it ("Your Layer or Model is in an invalid state"): make a new one.
            self._new_model()
            return self._predict(weights)

    def _predict(self, weights, chunk=512):
        self.model.set_weights([np.asarray(w) for w in weights])
        # In chunks: the convolution's output for all 1,180 test images at once is about 100 MB
        # (1,180 × 26 × 26 × 32 float32), and the allocator keeps such a peak for the session.
        return np.concatenate([self._classify(self.inputs[start:start + chunk]).numpy()
                               for start in range(0, len(self.labels), chunk)])

    def accuracy(self, weights):
        return float(np.mean(self.predictions(weights) == self.labels))

    def per_digit(self, weights):
        predicted = self.predictions(weights)
        return np.array([np.mean(predicted[self.labels == d] == d) for d in range(10)])


def run(initialize, next_round, get_weights, rounds, evaluator, seed=0):
    """Train for `rounds` rounds; record the global model's accuracy before training and after each round.

    initialize() -> state;  next_round(state, round_num) -> state;  get_weights(state) -> list of arrays.
    Seeds TensorFlow first, so runs with the same seed start from the same initial model.
    """
    runtime.set_seed(seed)
    state = initialize()
    accuracy = [evaluator.accuracy(get_weights(state))]
    for round_num in range(rounds):
        state = next_round(state, round_num)
        accuracy.append(evaluator.accuracy(get_weights(state)))
    return History(np.array(accuracy), [np.asarray(w) for w in get_weights(state)])


def rounds_to(accuracy, target):
    """First round whose accuracy reaches `target`, or None if it never does."""
    hits = np.flatnonzero(np.asarray(accuracy) >= target)
    return int(hits[0]) if len(hits) else None


def tff_fedavg(model_fn, element_spec, client_learning_rate, model_aggregator=None, weighted=True,
               server_optimizer=None, reduce_loop=False):
    """TFF's built-in FedAvg (`build_weighted_fed_avg`, or `build_unweighted_fed_avg` when not `weighted`)
    for a Keras `model_fn`: client SGD at `client_learning_rate`, server SGD at 1 unless `server_optimizer`,
    the dataset-iterator loop the course's `client_update` uses (TFF's default dataset-reduce loop when
    `reduce_loop`), and `model_aggregator` where TFF plugs in secure aggregation, DP, robustness or
    compression (default: TFF's)."""
    import tensorflow_federated as tff

    build = tff.learning.algorithms.build_weighted_fed_avg if weighted else tff.learning.algorithms.build_unweighted_fed_avg
    options = {} if model_aggregator is None else {"model_aggregator": model_aggregator}
    return build(lambda: tff.learning.models.from_keras_model(model_fn(), input_spec=element_spec,
                                                              loss=tf.keras.losses.SparseCategoricalCrossentropy()),
                 client_optimizer_fn=tff.learning.optimizers.build_sgdm(learning_rate=client_learning_rate),
                 server_optimizer_fn=server_optimizer or tff.learning.optimizers.build_sgdm(learning_rate=1.0),
                 loop_implementation=(tff.learning.LoopImplementation.DATASET_REDUCE if reduce_loop
                                      else tff.learning.LoopImplementation.DATASET_ITERATOR), **options)


def run_tff(process, start_weights, rounds, datasets_fn, evaluator, seed=0):
    """`run` for a TFF learning process started from `start_weights`: `datasets_fn(round_num)` gives the
    round's client datasets (an empty list skips the round: nobody took part)."""
    import tensorflow_federated as tff

    def initialize():
        weights = tff.learning.models.ModelWeights(trainable=list(start_weights), non_trainable=[])
        return process.set_model_weights(process.initialize(), weights)

    def next_round(state, round_num):
        datasets = datasets_fn(round_num)
        return process.next(state, datasets).state if datasets else state
    return run(initialize, next_round, lambda state: process.get_model_weights(state).trainable, rounds, evaluator, seed)
