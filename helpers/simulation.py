"""FedAvg's round step on a compiled trainer, for the many short seeded runs of experiments.

The arithmetic is the course's FedAvg: each client runs notebook 03's `client_update` (plain SGD on
the mean cross-entropy, batches of 20, FedProx's proximal gradient when `mu` > 0), the server takes
the example-weighted mean delta and steps with a TFF optimizer (notebook 04's
`server_optimizer_update`). What is left out is TFF's runtime: a client's epochs run as one compiled
TensorFlow loop over its images held in memory. `FedAvgStep` plugs into `training.run`; its hooks
change one thing each (drop-outs, staleness, deadlines, weights, aggregator, attackers).
"""
import collections

import numpy as np
import tensorflow as tf

from helpers import data, populations, training
from helpers.fedavg import sample_clients


def flatten(weights):
    return np.concatenate([np.asarray(w, np.float64).ravel() for w in weights])


def unflatten(vector, like):
    out, start = [], 0
    for w in like:
        size = int(np.prod(np.shape(w)))
        out.append(np.asarray(vector[start:start + size]).reshape(np.shape(w)).astype(np.float32))
        start += size
    return out


def as_model_input(pixels):
    """Shipped uint8 pixels (255 = background) -> the model's input as a NumPy array (ink = 1.0)."""
    return data.to_model_input(np.asarray(pixels, np.float32) / 255.0).numpy()


class Trainer:
    """One client's local training, as the course's `client_update` does it, compiled once.

    `update(weights, clients, cid, seed, epochs, mu, max_batches)` -> (flattened delta, number of
    examples trained on). Each epoch visits the client's images once in a fresh order drawn from
    `seed`, in batches of `batch_size` (the last one smaller); `max_batches` stops early (a deadline);
    `mu` > 0 adds FedProx's proximal gradient mu * (w - w_received) to every step. `batches` gives the
    same batches as a dataset in the course's format, so a TFF process can train on exactly them.
    """

    def __init__(self, model_fn, learning_rate=0.1, batch_size=20):
        self.model, self.batch_size, self.learning_rate = model_fn(), batch_size, learning_rate
        variables = self.model.trainable_variables
        received = [tf.Variable(v) for v in variables]
        loss_fn = tf.keras.losses.SparseCategoricalCrossentropy()

        @tf.function(input_signature=[tf.TensorSpec([None, 28, 28], tf.uint8), tf.TensorSpec([None], tf.int32),
                                      tf.TensorSpec([None, batch_size], tf.int32), tf.TensorSpec([], tf.float32),
                                      tf.TensorSpec([], tf.float32)])
        def local_training(pixels, y, batches, learning_rate, mu):
            # One graph for all of a client's steps: no Python between batches. Rows of `batches` are
            # example indices, padded with -1 where the last batch of an epoch is short. Pixels stay
            # uint8 as shipped and become the model's input batch by batch: a float copy of every
            # population's images, kept per trainer, was what grew notebook 06's memory by 300 MB.
            for keep, variable in zip(received, variables):
                keep.assign(variable)
            for i in tf.range(tf.shape(batches)[0]):
                index = tf.boolean_mask(batches[i], batches[i] >= 0)
                with tf.GradientTape() as tape:
                    x = data.to_model_input(tf.cast(tf.gather(pixels, index), tf.float32) / 255.0)
                    loss = loss_fn(tf.gather(y, index), self.model(x, training=True))
                for variable, gradient, start in zip(variables, tape.gradient(loss, variables), received):
                    variable.assign_sub(learning_rate * (gradient + mu * (variable - start)))
            return tf.constant(0)
        self._local_training = local_training

    def order(self, num_examples, seed, epochs=1, max_batches=None):
        """(batches, batch_size) example indices, -1 padding; each epoch shuffled afresh from `seed`."""
        rng, rows = np.random.default_rng(seed), []
        for _ in range(epochs):
            order = rng.permutation(num_examples)
            for start in range(0, num_examples, self.batch_size):
                row = np.full(self.batch_size, -1, np.int32)
                piece = order[start:start + self.batch_size]
                row[:len(piece)] = piece
                rows.append(row)
        rows = rows[:max_batches] if max_batches is not None else rows
        return np.array(rows, np.int32).reshape(-1, self.batch_size)

    def update(self, weights, clients, cid, seed, epochs=1, mu=0.0, max_batches=None):
        populations.check_client(clients, cid)
        x, y = np.asarray(clients.pixels[cid]), np.asarray(clients.labels[cid], np.int32)
        if x.dtype != np.uint8:
            raise TypeError(f"client {cid}'s pixels are {x.dtype}; the trainer takes them as shipped, uint8 with 255 = "
                            f"background (populations.writer_clients and redeal keep them so)")
        batches = self.order(len(y), seed, epochs, max_batches)
        for variable, value in zip(self.model.trainable_variables, weights):
            variable.assign(value)
        self._local_training(x, y, batches, self.learning_rate, float(mu))
        trained = int(np.sum(batches >= 0))
        trained_weights = self.model.trainable_variables
        return flatten([v.numpy() - np.asarray(w) for v, w in zip(trained_weights, weights)]), float(trained)

    def batches(self, clients, cid, seed, epochs=1, max_batches=None):
        """The batches `update` trains on, as a dataset in the course's format (for a TFF process)."""
        x, y = as_model_input(clients.pixels[cid]), np.asarray(clients.labels[cid], np.int32)
        rows = self.order(len(y), seed, epochs, max_batches)
        sizes = (rows >= 0).sum(axis=1).astype(np.int64)
        examples = collections.OrderedDict(x=tf.constant(x[rows[rows >= 0]]), y=tf.constant(y[rows[rows >= 0]]))
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        # Cut the examples where `update`'s batches end (each epoch's last batch may be short).
        return tf.data.Dataset.from_tensor_slices((starts, sizes)).map(
            lambda start, size: collections.OrderedDict(
                (key, value[start:start + size]) for key, value in examples.items()))


Update = collections.namedtuple("Update", ["cid", "delta", "num_examples", "staleness"])
Update.__doc__ = """What one client sent: its flattened delta, how many examples it trained on (or
claims to have), and how many rounds late it is."""


def weighted_mean(deltas, weights):
    """FedAvg's aggregate: the mean of the deltas (one row per client) weighted by `weights`."""
    deltas, weights = np.asarray(deltas, np.float64), np.asarray(weights, np.float64)
    if deltas.ndim != 2 or weights.shape != (len(deltas),):
        raise ValueError(f"an aggregator takes deltas (clients, parameters) and weights (clients,); "
                         f"got {deltas.shape} and {weights.shape}")
    if (weights < 0).any() or not weights.sum() > 0:
        raise ValueError(f"weights must be non-negative with a positive sum, got {weights}: a client's "
                         f"weight is its number of examples (or a share of it)")
    return weights @ deltas / weights.sum()


class FedAvgStep:
    """One FedAvg round on `clients` with a compiled `trainer`, as a step of `training.run`.

    Each round samples `clients_per_round` clients (`fedavg.sample_clients`, from `eligible` if
    given); each trains `local_epochs` epochs from the global model (FedProx's pull when `mu` > 0);
    the server applies the aggregate with `server_optimizer` (a TFF optimizer; default SGD at rate
    1, plain FedAvg). Hooks, each optional, change one thing:
      reports(sampled, round_num, seed) -> the sampled clients whose updates arrive (drop-outs);
      delay(cid, round_num, seed) -> how many rounds later this client's update arrives: it trains
        on the model it received in `round_num` and is aggregated `delay` rounds later, in
        addition to that round's fresh updates (a fixed-delay model of asynchronous arrivals;
        FedBuff, Nguyen et al. 2022, also buffers K updates and down-weights stale ones), as an
        Update whose `staleness` is `delay`; an update due after the last round never arrives;
      deadline(cid, round_num, seed) -> how many batches the client finishes in time;
      tamper(updates, global_weights, round_num) -> the updates the server receives (attackers);
      weigh(update) -> its weight in the aggregate (default: its number of examples);
      aggregate(deltas, weights) -> the mean delta the server applies (default: weighted_mean).
    Updates with no examples or no weight do not count; a round where none counts leaves the
    model as it was.
    """

    def __init__(self, trainer, clients, seed=0, clients_per_round=10, local_epochs=1, mu=0.0,
                 server_optimizer=None, eligible=None, reports=None, delay=None, deadline=None,
                 tamper=None, weigh=None, aggregate=weighted_mean):
        import tensorflow_federated as tff

        self.trainer, self.clients, self.seed = trainer, clients, seed
        self.clients_per_round, self.local_epochs, self.mu = clients_per_round, local_epochs, mu
        self.server_optimizer = server_optimizer or tff.learning.optimizers.build_sgdm(learning_rate=1.0)
        self.pool = range(len(clients.labels)) if eligible is None else eligible
        if not 1 <= clients_per_round <= len(self.pool):
            raise ValueError(f"clients_per_round={clients_per_round}: it must be between 1 and the "
                             f"{len(self.pool)} clients that can take part")
        self.reports, self.delay, self.deadline = reports, delay, deadline
        self.tamper, self.weigh, self.aggregate = tamper, weigh, aggregate

    def initialize(self, start_weights):
        specs = [tf.TensorSpec(np.shape(w), tf.float32) for w in start_weights]
        server = self.server_optimizer.initialize(specs)
        # pending: (round it arrives in, Update) for the updates still on their way
        return dict(weights=start_weights, server=server, pending=[])

    def train(self, cid, round_num, global_weights):
        """Client `cid`'s Update, trained in `round_num` from the global model it received."""
        seed = self.seed
        late = int(self.delay(cid, round_num, seed)) if self.delay else 0
        if late < 0:
            raise ValueError(f"delay must be 0 or more rounds, got {late} for client {cid}")
        limit = self.deadline(cid, round_num, seed) if self.deadline else None
        delta, n = self.trainer.update(global_weights, self.clients, cid, seed=[seed, round_num, cid],
                                       epochs=self.local_epochs, mu=self.mu, max_batches=limit)
        return Update(cid, delta, n, late)

    def next(self, state, round_num):
        global_weights = state["weights"]
        sampled = sample_clients(self.pool, self.clients_per_round, round_num, self.seed)
        arrived = list(self.reports(sampled, round_num, self.seed)) if self.reports else sampled
        trained = [self.train(cid, round_num, global_weights) for cid in arrived]
        pending = state["pending"] + [(round_num + u.staleness, u) for u in trained]
        updates = [u for due, u in pending if due == round_num and u.num_examples > 0]
        pending = [(due, u) for due, u in pending if due > round_num]
        if self.tamper is not None:
            updates = list(self.tamper(updates, global_weights, round_num))
        counts = np.array([self.weigh(u) if self.weigh else u.num_examples for u in updates])
        server = state["server"]
        if (counts > 0).any():
            kept = [u.delta for u, count in zip(updates, counts) if count > 0]
            mean_delta = self.aggregate(np.array(kept), counts[counts > 0])
            # The pseudo-gradient is the negated mean delta (notebook 04).
            gradient = [tf.constant(-d) for d in unflatten(mean_delta, global_weights)]
            server, new = self.server_optimizer.next(
                server, [tf.constant(w) for w in global_weights], gradient)
            global_weights = [np.asarray(w) for w in new]
        return dict(weights=global_weights, server=server, pending=pending)

    def weights(self, state):
        return state["weights"]


class Runner:
    """Many seeded FedAvgStep runs, trained side by side: `threads` threads, each with its own
    trainer and its own copy of every evaluator (TensorFlow runs ops outside Python's lock, so two
    runs use two cores). Each run gives the same result as alone: its start model is drawn from
    its seed before any thread starts, and nothing else is shared."""

    LOOP = ("rounds", "evaluator", "start_weights", "evaluate_every", "record")

    def __init__(self, model_fn, learning_rate=0.1, threads=2):
        self.model_fn, self.threads = model_fn, threads
        self.trainers = [Trainer(model_fn, learning_rate) for _ in range(threads)]
        self._evaluators = {}

    def _evaluator(self, evaluator, slot):
        key = (id(evaluator), slot)
        if key not in self._evaluators:  # keeps the original alive: ids stay unique
            self._evaluators[key] = (evaluator, evaluator.copy())
        return self._evaluators[key][1]

    def run_all(self, jobs):
        """jobs: dicts of `training.run`'s settings (rounds, evaluator, optional start_weights,
        evaluate_every, record) and FedAvgStep's (clients, seed, ...). `clients` may also be a
        function that makes them: it is called when the run starts, and its population freed when
        the run ends (many re-dealt populations then never sit in memory at once). Returns their
        Histories, in order."""
        import concurrent.futures
        import queue

        jobs = [dict(job) for job in jobs]
        for job in jobs:  # in this thread: seeding is global, and Keras models are best made here
            if "start_weights" not in job:
                job["start_weights"] = training.seeded_weights(self.model_fn, job.get("seed", 0))
            for slot in range(self.threads):
                self._evaluator(job["evaluator"], slot)
        slots = queue.Queue()
        for slot in range(self.threads):
            slots.put(slot)

        def one(job):
            slot = slots.get()
            try:
                loop = {key: job.pop(key) for key in self.LOOP if key in job}
                loop["evaluator"] = self._evaluator(loop["evaluator"], slot)
                if callable(job["clients"]):
                    job["clients"] = job["clients"]()
                step = FedAvgStep(self.trainers[slot], **job)
                return training.run(step, **loop)
            finally:
                slots.put(slot)
        with concurrent.futures.ThreadPoolExecutor(self.threads) as pool:
            return list(pool.map(one, jobs))
