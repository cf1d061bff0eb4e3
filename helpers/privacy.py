"""Plumbing for notebook 07 (privacy): the secure-aggregation protocol in NumPy, privacy accounting
with Google's `dp_accounting`, and two attack measurements (PSNR, ROC/AUC).

Secure aggregation here follows the structure of Bonawitz et al. (2017): fixed-point encoding into
integers mod 2**32, pairwise masks from Diffie-Hellman agreed seeds (they cancel in the sum), a
self mask per client (double masking), and every client's secrets shared t-of-n with Shamir's
scheme, so the server can remove the masks of clients that drop out. The group, the field and the
hash are real but chosen for clarity, not vetted for security: this teaches the arithmetic, it is
not a library to deploy.
"""
import hashlib
import math
import secrets

import numpy as np

MODULUS_BITS = 32  # masked values live in Z_(2**32): NumPy's uint32 arithmetic wraps exactly there
PRIME = 2**127 - 1  # a Mersenne prime: the Diffie-Hellman group and the Shamir field
GENERATOR = 3


class PrivacyInputError(ValueError):
    """Bad input to the privacy helpers (non-finite update, ε or δ out of range, too few survivors)."""


# --- fixed-point encoding ---------------------------------------------------------------------

def encode(update, clip, bits=MODULUS_BITS, num_clients=1):
    """Float update -> uint32 fixed point. Values are clipped to [-clip, clip] and scaled so that the
    sum of `num_clients` such values cannot wrap around 2**bits. Raises on non-finite values."""
    update = np.asarray(update, np.float64)
    if not np.all(np.isfinite(update)):
        raise PrivacyInputError(f"{np.size(update) - np.isfinite(update).sum()} non-finite value(s) in the update: "
                                "a NaN or inf cannot be encoded; drop or repair this client's update first.")
    scale = resolution(clip, bits, num_clients) ** -1
    levels = np.round(np.clip(update, -clip, clip) * scale).astype(np.int64)
    return (levels % 2**bits).astype(np.uint64 if bits > 32 else np.uint32)


def resolution(clip, bits=MODULUS_BITS, num_clients=1):
    """The value of one integer step: the sum of `num_clients` values in [-clip, clip] must fit in
    (-2**(bits-1), 2**(bits-1))."""
    if clip <= 0:
        raise PrivacyInputError(f"clip must be positive, got {clip}")
    return num_clients * clip / (2 ** (bits - 1) - 1)


def decode(total, clip, bits=MODULUS_BITS, num_clients=1):
    """uint32 sum -> float sum (two's complement: values above 2**(bits-1) are negative)."""
    signed = np.asarray(total, np.int64)
    signed = np.where(signed >= 2 ** (bits - 1), signed - 2**bits, signed)
    return signed * resolution(clip, bits, num_clients)


def prg(seed, size):
    """Expand a seed (an int) into `size` uniform uint32 values: the mask generator."""
    return np.random.default_rng(seed).integers(0, 2**32, size=size, dtype=np.uint64).astype(np.uint32)


# --- Shamir secret sharing (t of n) ---------------------------------------------------------------

def share(secret, threshold, num_shares, rng=secrets.SystemRandom()):
    """Split `secret` (< PRIME) into points (x, y) of a random polynomial of degree threshold-1."""
    coefficients = [secret] + [rng.randrange(PRIME) for _ in range(threshold - 1)]
    return [(x, sum(c * pow(x, k, PRIME) for k, c in enumerate(coefficients)) % PRIME)
            for x in range(1, num_shares + 1)]


def reconstruct(shares, threshold):
    """The secret from any `threshold` shares (Lagrange interpolation at 0); fewer is an error."""
    if len(shares) < threshold:
        raise PrivacyInputError(f"{len(shares)} shares cannot rebuild a secret shared {threshold}-of-n: "
                                f"the protocol needs at least {threshold} surviving clients.")
    points = shares[:threshold]
    secret = 0
    for i, (x_i, y_i) in enumerate(points):
        weight = 1
        for j, (x_j, _) in enumerate(points):
            if i != j:
                weight = weight * x_j * pow(x_j - x_i, -1, PRIME) % PRIME
        secret = (secret + y_i * weight) % PRIME
    return secret


# --- the protocol ---------------------------------------------------------------------------------

def _pair_seed(shared_key, a, b):
    digest = hashlib.sha256(f"{shared_key}:{min(a, b)}:{max(a, b)}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


class SecureAggregation:
    """One round of secure aggregation among `num_clients` clients, any `threshold` of them enough.

    Each client u holds a Diffie-Hellman key pair (sk_u, pk_u = g**sk_u mod p) and a self-mask seed b_u;
    it shares both secrets t-of-n with the others. Client u's masked input is
        y_u = x_u + PRG(b_u) + sum_{v>u} PRG(s_uv) - sum_{v<u} PRG(s_uv)    (mod 2**32),
    with s_uv agreed from pk_v**sk_u. The pairwise masks cancel in the sum over everyone; for a client
    that dropped out after the keys were exchanged, the survivors reveal shares of its sk (never of its
    b), and for each survivor shares of its b (never of its sk): the server can unmask the sum, not a
    client. `rng` makes a run repeatable; leave it None (the OS's secret randomness) for real use.
    """

    def __init__(self, num_clients, threshold, rng=None):
        if not 1 < threshold <= num_clients:
            raise PrivacyInputError(f"threshold must be in 2..{num_clients}, got {threshold}")
        self.n, self.t = num_clients, threshold
        rng = rng or secrets.SystemRandom()
        self.sk = [rng.randrange(2, PRIME - 1) for _ in range(num_clients)]
        self.pk = [pow(GENERATOR, sk, PRIME) for sk in self.sk]
        self.self_seed = [rng.randrange(2**63) for _ in range(num_clients)]
        # shares[u] = what each other client holds of u's two secrets (sent encrypted in the real protocol)
        self.sk_shares = [share(sk, threshold, num_clients, rng) for sk in self.sk]
        self.seed_shares = [share(b, threshold, num_clients, rng) for b in self.self_seed]

    def pair_seed(self, u, v, sk=None):
        """The seed u and v agree on; anyone who knows sk_u (or sk_v) can compute it."""
        return _pair_seed(pow(self.pk[v], self.sk[u] if sk is None else sk, PRIME), u, v)

    def pairwise_mask(self, u, size, sk=None):
        mask = np.zeros(size, np.uint32)
        for v in range(self.n):
            if v != u:
                pair = prg(self.pair_seed(u, v, sk), size)
                mask = mask + pair if v > u else mask - pair  # uint32: wraps mod 2**32
        return mask

    def masked_input(self, u, encoded):
        """What client u sends: its encoded update hidden by its self mask and pairwise masks."""
        encoded = np.asarray(encoded, np.uint32)
        return encoded + prg(self.self_seed[u], encoded.size) + self.pairwise_mask(u, encoded.size)

    def unmask(self, masked_inputs):
        """The server's sum from {client: masked input} of the clients that did not drop out."""
        survivors = sorted(masked_inputs)
        if len(survivors) < self.t:
            raise PrivacyInputError(f"only {len(survivors)} of {self.n} clients answered; "
                                    f"the round needs {self.t} to unmask the sum")
        size = len(next(iter(masked_inputs.values())))
        total = np.zeros(size, np.uint32)
        for u in survivors:
            total = total + masked_inputs[u]
            seed = reconstruct([self.seed_shares[u][v] for v in survivors], self.t)
            total = total - prg(seed, size)  # the survivors' self masks
        for u in sorted(set(range(self.n)) - set(survivors)):
            sk = reconstruct([self.sk_shares[u][v] for v in survivors], self.t)
            for v in survivors:  # the pairwise masks survivors added for u, which u never cancelled
                pair = prg(self.pair_seed(u, v, sk), size)
                total = total + pair if v > u else total - pair
        return total


def uniformity_pvalue(values, bins=256):
    """Chi-square p-value that uint32 values are uniform (their top 8 bits, `bins` equal bins)."""
    from scipy import stats

    counts = np.bincount((np.asarray(values, np.uint64) >> np.uint64(32 - int(math.log2(bins)))).astype(int),
                         minlength=bins)
    return float(stats.chisquare(counts).pvalue)


# --- accounting -------------------------------------------------------------------------------------

def _check_budget(delta, noise_multiplier):
    if not 0 < delta < 1:
        raise PrivacyInputError(f"δ must be in (0, 1), got {delta}")
    if noise_multiplier < 0 or not np.isfinite(noise_multiplier):
        raise PrivacyInputError(f"the noise multiplier must be a finite number ≥ 0, got {noise_multiplier}")


def epsilon(noise_multiplier, rounds, delta, sampling="poisson", q=None, population=None,
            clients_per_round=None, accountant="rdp"):
    """ε after `rounds` rounds of the Gaussian mechanism (noise std = noise_multiplier × clip).

    sampling: "poisson" (each client joins independently with probability q; add/remove neighbours),
    "fixed" (exactly clients_per_round of population, without replacement; replace-one neighbours,
    RDP only), or "none" (every round may contain the client: no amplification).
    accountant: "rdp" or "pld". Sampling amplifies only if the adversary does not know the sample.
    """
    import dp_accounting

    _check_budget(delta, noise_multiplier)
    if noise_multiplier == 0:
        return math.inf
    gaussian = dp_accounting.GaussianDpEvent(noise_multiplier)
    if sampling == "poisson":
        if not 0 < q <= 1:
            raise PrivacyInputError(f"the sampling rate q must be in (0, 1], got {q}")
        event = dp_accounting.PoissonSampledDpEvent(q, gaussian)
    elif sampling == "fixed":
        event = dp_accounting.SampledWithoutReplacementDpEvent(population, clients_per_round, gaussian)
    elif sampling == "none":
        event = gaussian
    else:
        raise PrivacyInputError(f"unknown sampling {sampling!r}: choose 'poisson', 'fixed' or 'none'")
    if accountant == "rdp":
        relation = (dp_accounting.NeighboringRelation.REPLACE_ONE if sampling == "fixed"
                    else dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE)
        tracker = dp_accounting.rdp.RdpAccountant(neighboring_relation=relation)
    elif accountant == "pld":
        if sampling == "fixed":
            raise PrivacyInputError("the PLD accountant has no fixed-size sampling event; use accountant='rdp'")
        tracker = dp_accounting.pld.PLDAccountant(value_discretization_interval=1e-3)
    else:
        raise PrivacyInputError(f"unknown accountant {accountant!r}: choose 'rdp' or 'pld'")
    tracker.compose(event, count=rounds)
    return float(tracker.get_epsilon(delta))


def tree_epsilon(noise_multiplier, rounds, delta, max_participations=1):
    """ε of DP-FTRL with tree aggregation (Kairouz et al., 2021): no sampling assumed; each client
    contributes in at most `max_participations` rounds, and every round's release is a noisy prefix sum."""
    import dp_accounting

    _check_budget(delta, noise_multiplier)
    if noise_multiplier == 0:
        return math.inf
    if not 1 <= max_participations <= rounds:
        raise PrivacyInputError(f"max_participations must be in 1..{rounds}, got {max_participations}")
    # one tree per stretch of rounds in which a client takes part at most once, composed over the stretches
    event = dp_accounting.SingleEpochTreeAggregationDpEvent(noise_multiplier, [rounds // max_participations])
    # REPLACE_SPECIAL: one client's contributions replaced by zeros, the tree's analogue of add/remove
    tracker = dp_accounting.rdp.RdpAccountant(neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_SPECIAL)
    tracker.compose(event, count=max_participations)
    return float(tracker.get_epsilon(delta))


# --- measurements -----------------------------------------------------------------------------------

def psnr(reconstructed, original, peak=1.0):
    """Peak signal-to-noise ratio in dB (higher is closer; identical images give inf)."""
    error = np.mean((np.asarray(reconstructed, np.float64) - np.asarray(original, np.float64)) ** 2)
    return math.inf if error == 0 else 10 * math.log10(peak**2 / error)


def roc_auc(member_scores, nonmember_scores):
    """(false positive rates, true positive rates, AUC) of "score higher = member"; AUC is the chance a
    random member outscores a random non-member (ties count half)."""
    members, others = np.asarray(member_scores, float), np.asarray(nonmember_scores, float)
    thresholds = np.unique(np.concatenate([members, others]))[::-1]
    tpr = np.array([0.0] + [np.mean(members >= t) for t in thresholds])
    fpr = np.array([0.0] + [np.mean(others >= t) for t in thresholds])
    auc = np.mean(members[:, None] > others[None, :]) + 0.5 * np.mean(members[:, None] == others[None, :])
    return fpr, tpr, float(auc)


def auc_bound(epsilon, delta):
    """The largest AUC any membership test can reach against an (ε, δ)-DP mechanism: its ROC curve
    must satisfy TPR ≤ e^ε·FPR + δ and 1 − FPR ≤ e^ε·(1 − TPR) + δ (Kairouz, Oh and Viswanath, 2015)."""
    _check_budget(delta, 0.0)
    if not math.isfinite(epsilon):
        return 1.0
    fpr = np.linspace(0.0, 1.0, 100_001)
    tpr = np.minimum.reduce([np.ones_like(fpr), math.exp(epsilon) * fpr + delta,
                             1 - math.exp(-epsilon) * (1 - delta - fpr)])
    return float(np.trapz(np.clip(tpr, 0, 1), fpr))
