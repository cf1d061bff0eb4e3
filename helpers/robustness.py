"""Plumbing for notebook 08 (security and robustness): attackers that run their own code, robust
aggregators over flattened updates, a backdoor trigger, and a fast round loop for the attack grid.

The grid trains many short runs, so rounds run on `helpers.simulation`'s fast trainer: each client's
update is the course's local SGD (notebook 03's `client_update`, compiled once), the server step is
FedAvg's with rate 1. Notebook 08 checks that one of these aggregators, written as a
`tff.aggregators` factory, gives the same model inside TFF's own runtime.
"""
import collections

import numpy as np
import tensorflow as tf

from helpers import experiments as ex
from helpers.simulation import Trainer, flatten, unflatten  # noqa: F401 (08 uses rb.Trainer)

ATTACKS = ("sign flip", "boosted", "gaussian noise", "label flip", "weight inflation", "backdoor")
BACKDOOR_TARGET = 0  # the backdoor makes any image carrying the trigger read as this digit
BOOST = 10.0  # the boosted attacker scales its update by about the number of clients in a round
INFLATION = 100.0  # the inflating attacker claims this many times its real number of examples


class RobustnessInputError(ValueError):
    """Bad input to the robustness helpers: an unknown aggregator or attack, a fraction out of range, a wrong shape."""


# --- aggregators: (updates (n, P), weights (n,)) -> aggregate (P,) ----------------------------------

def _check(updates, weights):
    updates, weights = np.asarray(updates, np.float64), np.asarray(weights, np.float64)
    if updates.ndim != 2 or weights.shape != (len(updates),):
        raise RobustnessInputError(f"updates must be (clients, parameters) and weights (clients,); got {updates.shape} "
                                   f"and {weights.shape}")
    return updates, weights


def weighted_mean(updates, weights):
    updates, weights = _check(updates, weights)
    return weights @ updates / weights.sum()


def unweighted_mean(updates, weights):
    updates, _ = _check(updates, weights)
    return updates.mean(axis=0)


def norm_clipped_mean(updates, weights):
    """Weighted mean after the server clips every update to the round's median norm."""
    updates, weights = _check(updates, weights)
    norms = np.linalg.norm(updates, axis=1)
    scale = np.minimum(1.0, np.median(norms) / np.maximum(norms, 1e-12))
    return (weights * scale) @ updates / weights.sum()


def coordinate_median(updates, weights):
    updates, _ = _check(updates, weights)
    return np.median(updates, axis=0)


def trimmed_mean(updates, weights, trim=0.3):
    """Per coordinate, drop the `trim` fraction of largest and of smallest values, average the rest."""
    updates, _ = _check(updates, weights)
    k = int(np.floor(trim * len(updates)))
    ordered = np.sort(updates, axis=0)
    return ordered[k:len(updates) - k].mean(axis=0)


def multi_krum(updates, weights, num_byzantine=3):
    """Multi-Krum (Blanchard et al., 2017): score each update by the summed squared distances to its
    n − f − 2 nearest others; average the n − f best-scored updates."""
    updates, _ = _check(updates, weights)
    n = len(updates)
    squared = np.sum(updates**2, axis=1)
    distances = squared[:, None] + squared[None, :] - 2 * updates @ updates.T
    nearest = max(1, n - num_byzantine - 2)
    scores = np.sort(distances + np.diag(np.full(n, np.inf)), axis=1)[:, :nearest].sum(axis=1)
    chosen = np.argsort(scores)[:max(1, n - num_byzantine)]
    return updates[chosen].mean(axis=0)


def noisy_clipped_mean(noise_multiplier, seed=0):
    """Norm clipping at the round's median norm C, unweighted, plus Gaussian noise of std z·C on the sum
    (DP-FedAvg's mechanism; the clip is chosen from the updates here, so this is not a DP guarantee)."""
    rng = np.random.default_rng(seed)

    def aggregate(updates, weights):
        updates, _ = _check(updates, weights)
        norms = np.linalg.norm(updates, axis=1)
        clip = np.median(norms)
        clipped = updates * np.minimum(1.0, clip / np.maximum(norms, 1e-12))[:, None]
        return (clipped.sum(axis=0) + rng.normal(0, noise_multiplier * clip, updates.shape[1])) / len(updates)
    return aggregate


AGGREGATORS = collections.OrderedDict([
    ("weighted mean", weighted_mean), ("unweighted mean", unweighted_mean), ("norm clipping", norm_clipped_mean),
    ("coordinate median", coordinate_median), ("trimmed mean", trimmed_mean), ("multi-Krum", multi_krum)])


def aggregator(name):
    if name not in AGGREGATORS:
        raise RobustnessInputError(f"unknown aggregator {name!r}: choose one of {list(AGGREGATORS)}")
    return AGGREGATORS[name]


# --- clients ------------------------------------------------------------------------------------------

def add_trigger(pixels):
    """Pixels (uint8, 255 = background) with the backdoor's trigger: a 4×4 ink square near the bottom right."""
    triggered = np.array(pixels, copy=True)
    triggered[..., 22:26, 22:26] = 0
    return triggered


def poisoned(clients, cid, mode, target=0):
    """Client `cid`'s data changed by the attacker: 'label flip' (y -> 9 - y) or 'backdoor' (half the
    images carry the trigger and the label `target`)."""
    pixels, labels = clients.pixels[cid], clients.labels[cid]
    if mode == "label flip":
        return ex.Clients([pixels], [(9 - labels).astype(np.int32)])
    if mode == "backdoor":
        half = np.arange(len(labels)) % 2 == 0
        pixels = np.where(half[:, None, None], add_trigger(pixels), pixels)
        return ex.Clients([pixels], [np.where(half, target, labels).astype(np.int32)])
    raise RobustnessInputError(f"unknown poisoning {mode!r}: 'label flip' or 'backdoor'")


def malicious_update(attack, honest_delta, num_examples, trainer, weights, clients, cid, seed, rng):
    """(update, claimed number of examples) an attacker sends instead of its honest update."""
    if attack == "sign flip":
        return -honest_delta, num_examples
    if attack == "boosted":
        return -BOOST * honest_delta, num_examples
    if attack == "gaussian noise":
        return rng.normal(0, BOOST * np.linalg.norm(honest_delta) / np.sqrt(honest_delta.size), honest_delta.size), num_examples
    if attack == "label flip":  # honest code on poisoned data
        return trainer.update(weights, poisoned(clients, cid, "label flip"), 0, seed)
    if attack == "weight inflation":  # a sign-flipped update that claims to speak for many examples
        return -honest_delta, INFLATION * num_examples
    if attack == "backdoor":  # model replacement: train on triggered images, then boost (Bagdasaryan et al., 2020)
        delta, n = trainer.update(weights, poisoned(clients, cid, "backdoor", BACKDOOR_TARGET), 0, seed)
        return BOOST * delta, n
    raise RobustnessInputError(f"unknown attack {attack!r}: choose one of {list(ATTACKS)}")


def run(trainer, start_weights, clients, aggregate, rounds, evaluator, clients_per_round=10, attack=None,
        fraction=0.0, seed=0, attack_rounds=None, record=None):
    """FedAvg rounds (server rate 1) from `start_weights`; in each of the first `attack_rounds` rounds (default:
    all) the first round(fraction × clients per round) sampled clients are attackers. Returns
    experiments.History (accuracy before and after each round); `record(weights)` is also called after each round."""
    if not 0 <= fraction < 0.5:
        raise RobustnessInputError(f"the fraction of malicious clients must be in [0, 0.5), got {fraction}")
    if attack is not None and attack not in ATTACKS:
        raise RobustnessInputError(f"unknown attack {attack!r}: choose one of {list(ATTACKS)}")
    attackers = int(round(fraction * clients_per_round)) if attack else 0
    rng = np.random.default_rng([seed, 8])
    weights = [np.asarray(w) for w in start_weights]
    accuracy = [evaluator.accuracy(weights)]
    for round_num in range(rounds):
        sampled = ex.sample(len(clients.labels), clients_per_round, round_num, seed)
        updates, counts = [], []
        attacking = attackers if attack_rounds is None or round_num < attack_rounds else 0
        for i, cid in enumerate(sampled):
            delta, n = trainer.update(weights, clients, cid, seed=[seed, round_num, cid])
            if i < attacking:
                delta, n = malicious_update(attack, delta, n, trainer, weights, clients, cid, [seed, round_num, cid], rng)
            updates.append(delta)
            counts.append(n)
        weights = unflatten(flatten(weights) + aggregate(np.array(updates), np.array(counts)), weights)
        accuracy.append(evaluator.accuracy(weights))
        if record is not None:
            record(weights)
    return ex.History(np.array(accuracy), weights)
