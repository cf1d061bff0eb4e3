"""Plumbing for notebook 07 (privacy): secure aggregation with real primitives, privacy accounting
with Google's `dp_accounting`, and the measurements (PSNR, ROC/AUC, bounds, a one-run audit).

Secure aggregation follows Bonawitz et al. (2017): fixed-point encoding into integers mod 2**32,
pairwise masks from Diffie-Hellman key agreement (they cancel in the sum), a self mask per client
(double masking), and every client's two secrets shared t-of-n with Shamir's scheme, so that the
server can remove the masks of clients that drop out. The primitives are real: the 2048-bit MODP
group of RFC 3526 (group 14, a safe prime, generator 2), keys derived with SHA-256 from the shared
secret and the pair's ids, masks expanded with SHAKE-256 (an extendable-output function of SHA-3),
shares over the prime field of the group's order. What is *not* built: the channels. The real
protocol sends each share encrypted and signed to its holder through the server, and checks who
answered; here the shares sit in one Python object. Teaching code, not a library to deploy.
"""
import hashlib
import math
import secrets

import numpy as np

MODULUS_BITS = 32  # masked values live in Z_(2**32): NumPy's uint32 arithmetic wraps exactly there

# RFC 3526, section 3: p = 2**2048 - 2**1984 - 1 + 2**64 * (floor(2**1918 * pi) + 124476), g = 2
GROUP_PRIME = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AACAA68FFFFFFFFFFFFFFFF", 16)
GENERATOR = 2
GROUP_ORDER = (GROUP_PRIME - 1) // 2  # q, prime: 2 generates the subgroup of order q
FIELD_PRIME = GROUP_ORDER  # Shamir's field: secret keys (exponents) and mask seeds are below q
EXPONENT_BITS = 320  # RFC 3526 rates this group at 110-160 bits of strength: exponents of 220-320 bits
SEED_BYTES = 32


class PrivacyInputError(ValueError):
    """Bad input to the privacy helpers (non-finite update, ε or δ out of range, too few survivors)."""


def is_probable_prime(n, rounds=40, rng=secrets.SystemRandom()):
    """Miller-Rabin: False means composite for certain; True is wrong with probability < 4**-rounds."""
    if n < 2:
        return False
    for small in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % small == 0:
            return n == small
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for _ in range(rounds):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


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
    """Expand a seed (an int below 2**256, or bytes) into `size` uint32 values: SHAKE-256's output,
    4 bytes a value. Used as a cryptographic PRG: without the seed, no efficient test is known to tell
    the output from uniform (an assumption: SHAKE-256 behaves as a PRG; standard, not reduced to a
    named hard problem); with the seed, anyone recomputes it."""
    if isinstance(seed, (int, np.integer)):
        seed = int(seed)
        if not 0 <= seed < 2 ** (8 * SEED_BYTES):
            raise PrivacyInputError(f"a mask seed is an int in [0, 2**256), got {seed}")
        seed = seed.to_bytes(SEED_BYTES, "big")
    stream = hashlib.shake_256(b"fedcourse mask|" + bytes(seed)).digest(4 * int(size))
    return np.frombuffer(stream, dtype="<u4").astype(np.uint32)


# --- Shamir secret sharing (t of n) over the field of the group's order ----------------------------

def share(secret, threshold, num_shares, rng=secrets.SystemRandom()):
    """Split `secret` (< FIELD_PRIME) into points (x, y) of a random polynomial of degree threshold-1:
    any `threshold` points give the secret back, fewer say nothing about it."""
    if not 0 <= secret < FIELD_PRIME:
        raise PrivacyInputError("a Shamir secret must lie in the field [0, FIELD_PRIME)")
    coefficients = [secret] + [rng.randrange(FIELD_PRIME) for _ in range(threshold - 1)]
    return [(x, sum(c * pow(x, k, FIELD_PRIME) for k, c in enumerate(coefficients)) % FIELD_PRIME)
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
                weight = weight * x_j * pow(x_j - x_i, -1, FIELD_PRIME) % FIELD_PRIME
        secret = (secret + y_i * weight) % FIELD_PRIME
    return secret


# --- the protocol ---------------------------------------------------------------------------------

def min_threshold(num_clients, adversary="honest-but-curious"):
    """The smallest threshold t that makes sense for `num_clients` clients against `adversary`.

    "honest-but-curious" (the course's model): t > n/2, so that no two disjoint groups of clients
    can each rebuild secrets, and a majority of the round is needed to unmask anything.
    "active": t > 2n/3, the bound under which Bonawitz et al. (2017) prove their malicious-secure
    protocol secure against a server that deviates (lying about who dropped out) with fewer than n/3
    corrupt clients. Arithmetic only: `SecureAggregation` implements the honest-but-curious protocol
    (no signatures, no authenticated key exchange, no consistency check) and refuses "active".
    """
    if adversary == "honest-but-curious":
        return num_clients // 2 + 1
    if adversary == "active":
        return 2 * num_clients // 3 + 1
    raise PrivacyInputError(f"unknown adversary {adversary!r}: choose 'honest-but-curious' or 'active'")


def check_public_key(public_key):
    """Refuse a received Diffie-Hellman public key outside the subgroup of prime order q: 1 and p - 1
    (the subgroup of order 2) make the shared secret one of two values; an element of order 2q leaks sk
    mod 2 (small-subgroup confinement). It does not
    authenticate the key: a server that replaces pk_v with its own g**x still learns s_uv (the real
    protocol signs the keys)."""
    public_key = int(public_key)
    if not (1 < public_key < GROUP_PRIME - 1 and pow(public_key, GROUP_ORDER, GROUP_PRIME) == 1):
        raise PrivacyInputError("a received public key must lie in the subgroup of prime order q: "
                                "1 < pk < p - 1 and pk**q = 1 mod p; refuse this client's key")
    return public_key


def pair_key(shared_secret, u, v):
    """The pair's mask seed: SHA-256 of the Diffie-Hellman shared secret and both ids (a KDF)."""
    low, high = sorted((int(u), int(v)))
    material = b"fedcourse pair key|" + shared_secret.to_bytes(256, "big") + b"|%d|%d" % (low, high)
    return hashlib.sha256(material).digest()


class SecureAggregation:
    """One round of secure aggregation among `num_clients` clients, any `threshold` of them enough.

    Each client u holds a Diffie-Hellman key pair (sk_u, pk_u = g**sk_u mod p) in RFC 3526's 2048-bit
    group and a self-mask seed b_u; it shares both secrets t-of-n with the others. Its masked input is
        y_u = x_u + PRG(b_u) + sum_{v>u} PRG(s_uv) - sum_{v<u} PRG(s_uv)    (mod 2**32),
    with s_uv = KDF(pk_v**sk_u mod p, u, v), which only u and v can compute. The pairwise masks cancel
    in the sum over everyone; for a client that dropped out after masking, the survivors reveal shares
    of its sk (never of its b); for each survivor, shares of its b (never of its sk). Hiding rests on
    the Diffie-Hellman assumption in the group (decisional DH in the subgroup of prime order q, or
    computational DH with SHA-256 as the key-derivation function modelled as a random oracle) and on
    SHAKE-256 behaving as a PRG. Honest-but-curious server only: `threshold` must be at least
    `min_threshold(num_clients)`, and adversary="active" is refused, since nothing here stops a
    deviating server (no signatures or authenticated key exchange, no consistency-check round);
    received public keys are checked to lie in the subgroup (`check_public_key`). Cost: every client
    agrees a key and expands a mask with each of the n-1 others, n(n-1) in a round; SecAgg+ (Bell et
    al., 2020) masks along a random graph of O(log n) neighbours per client, O(n log n) a round.
    `rng` makes a run repeatable; leave it None (the OS's secret randomness) for real use.
    """

    def __init__(self, num_clients, threshold, adversary="honest-but-curious", rng=None):
        if adversary != "honest-but-curious":
            min_threshold(num_clients, adversary)  # an unknown adversary: its own clear error
            raise PrivacyInputError(
                f"adversary {adversary!r}: this class implements the honest-but-curious protocol only "
                "(no signatures, key authentication or consistency check), so it cannot protect "
                "against an active server; use adversary='honest-but-curious'")
        lowest = min_threshold(num_clients, adversary)
        if num_clients < 3 or not lowest <= threshold <= num_clients:
            raise PrivacyInputError(
                f"threshold {threshold} for {num_clients} clients against an {adversary} server: "
                f"choose t in {lowest}..{num_clients} (at least 3 clients; t > n/2 for an honest-but-"
                f"curious server; t > n cannot be met even with no drop-out)")
        self.n, self.t, self.adversary = num_clients, threshold, adversary
        rng = rng or secrets.SystemRandom()
        self.sk = [rng.getrandbits(EXPONENT_BITS) | 1 << (EXPONENT_BITS - 1) for _ in range(num_clients)]
        self.pk = [pow(GENERATOR, sk, GROUP_PRIME) for sk in self.sk]
        self.self_seed = [rng.getrandbits(8 * SEED_BYTES) for _ in range(num_clients)]
        # shares[u][w] = what client w holds of u's secrets (sent encrypted to w in the real protocol)
        self.sk_shares = [share(sk, threshold, num_clients, rng) for sk in self.sk]
        self.seed_shares = [share(b, threshold, num_clients, rng) for b in self.self_seed]
        self._keys, self._valid_keys = {}, set()

    def pair_seed(self, u, v, sk=None):
        """The seed u and v agree on; anyone who knows sk_u (or sk_v) can compute it."""
        if sk is None and (u, v) in self._keys:
            return self._keys[u, v]
        if self.pk[v] not in self._valid_keys:  # v's key, as received through the server
            self._valid_keys.add(check_public_key(self.pk[v]))
        shared = pow(self.pk[v], self.sk[u] if sk is None else sk, GROUP_PRIME)
        key = pair_key(shared, u, v)
        if sk is None:
            self._keys[u, v] = key
        return key

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
            raise PrivacyInputError(f"only {len(survivors)} of {self.n} clients answered; the round "
                                    f"needs {self.t} to unmask the sum: abandon it, nothing is revealed")
        size = len(next(iter(masked_inputs.values())))
        total = np.zeros(size, np.uint32)
        for u in survivors:
            total = total + masked_inputs[u]
            seed = reconstruct([self.seed_shares[u][w] for w in survivors], self.t)
            total = total - prg(seed, size)  # the survivors' self masks
        for u in sorted(set(range(self.n)) - set(survivors)):
            sk = reconstruct([self.sk_shares[u][w] for w in survivors], self.t)
            for v in survivors:  # the pairwise masks survivors added for u, which u never cancelled
                pair = prg(self.pair_seed(u, v, sk), size)
                total = total + pair if v > u else total - pair
        return total


def uniformity_pvalue(values, bins=256):
    """Chi-square p-value of uint32 values' top 8 bits against `bins` equal bins. A small p-value
    shows a bias; a large one shows only that this test detects none (not that nothing could)."""
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
        if q is None or not 0 < q <= 1:
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


def tree_sizes(rounds, rounds_per_tree=None):
    """The trees of DP-FTRL's schedule: a new tree every `rounds_per_tree` rounds (the last one
    shorter if `rounds` is not a multiple), one tree for the whole run if None."""
    if rounds < 1:
        raise PrivacyInputError(f"rounds must be 1 or more, got {rounds}")
    per_tree = rounds if rounds_per_tree is None else int(rounds_per_tree)
    if not 1 <= per_tree <= rounds:
        raise PrivacyInputError(f"rounds_per_tree must be in 1..{rounds}, got {rounds_per_tree}")
    return [per_tree] * (rounds // per_tree) + ([rounds % per_tree] if rounds % per_tree else [])


def tree_epsilon(noise_multiplier, rounds, delta, rounds_per_tree=None):
    """ε of DP-FTRL with tree aggregation (Kairouz et al., 2021): no sampling assumed; the tree
    restarts every `rounds_per_tree` rounds (`tree_sizes`), and the guarantee needs each client to
    take part **at most once per tree**, which the schedule of rounds must enforce. A client's one
    contribution to a tree of s rounds enters one node per completed level, s.bit_length() nodes."""
    import dp_accounting

    _check_budget(delta, noise_multiplier)
    sizes = tree_sizes(rounds, rounds_per_tree)
    if noise_multiplier == 0:
        return math.inf
    # one tree event per tree: a client may appear in every tree, once in each
    event = dp_accounting.ComposedDpEvent(
        [dp_accounting.SingleEpochTreeAggregationDpEvent(noise_multiplier, size) for size in sizes])
    # REPLACE_SPECIAL: one client's contributions replaced by zeros, the tree's analogue of add/remove
    tracker = dp_accounting.rdp.RdpAccountant(neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_SPECIAL)
    tracker.compose(event)
    return float(tracker.get_epsilon(delta))


def gaussian_delta(mu, eps):
    """δ(ε) of the Gaussian mechanism whose outputs differ by mu standard deviations: exact (the
    analytic Gaussian mechanism, Balle & Wang 2018). T rounds of noise z on sensitivity 1, no
    sampling: mu = sqrt(T) / z."""
    from scipy.stats import norm

    eps = np.asarray(eps, float)
    return norm.cdf(-eps / mu + mu / 2) - np.exp(eps + norm.logcdf(-eps / mu - mu / 2))


def gaussian_epsilon(mu, delta):
    """The smallest ε with gaussian_delta(mu, ε) ≤ delta (bisection; δ(ε) falls as ε grows)."""
    _check_budget(delta, 0.0)
    low, high = 0.0, 1.0
    if gaussian_delta(mu, 0.0) <= delta:
        return 0.0
    while gaussian_delta(mu, high) > delta:
        low, high = high, 2 * high
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if gaussian_delta(mu, middle) > delta else (low, middle)
    return high


PROFILE_EPSILONS = np.linspace(0.0, 40.0, 801)


def privacy_profile(noise_multiplier, rounds, q=None, epsilons=PROFILE_EPSILONS):
    """(epsilons, δ(ε) at each): the whole privacy profile of `rounds` Gaussian rounds (Poisson
    sampling at rate q, or none if q is None), from dp_accounting's privacy loss distribution
    (pessimistic discretisation: every δ is an upper bound), the larger of adding and removing."""
    from dp_accounting.pld import privacy_loss_distribution as pld

    _check_budget(0.5, noise_multiplier)
    if noise_multiplier == 0:
        return np.asarray(epsilons, float), np.ones(len(epsilons))
    if q is not None and not 0 < q <= 1:
        raise PrivacyInputError(f"the sampling rate q must be in (0, 1], got {q}")
    one_round = pld.from_gaussian_mechanism(noise_multiplier, sampling_prob=1.0 if q is None else q,
                                            value_discretization_interval=1e-3)
    composed = one_round.self_compose(rounds)
    return np.asarray(epsilons, float), np.asarray(composed.get_delta_for_epsilon(epsilons), float)


_FPR = np.unique(np.concatenate([[0.0, 1.0], np.geomspace(1e-9, 0.5, 2000), 1 - np.geomspace(1e-9, 0.5, 2000)]))


def tpr_upper_bound(epsilons, deltas, fpr=_FPR):
    """The largest true positive rate any membership test can reach at each false positive rate
    against a mechanism that is (ε, δ(ε))-DP for every pair given, in both directions:
    TPR ≤ e^ε·FPR + δ and 1 − FPR ≤ e^ε·(1 − TPR) + δ (Kairouz, Oh & Viswanath, 2015)."""
    fpr = np.asarray(fpr, float)
    bound = np.ones_like(fpr)
    for eps, delta in zip(np.atleast_1d(epsilons), np.atleast_1d(deltas)):
        if not math.isfinite(eps):
            continue
        bound = np.minimum(bound, np.exp(eps) * fpr + delta)
        bound = np.minimum(bound, 1 - np.exp(-eps) * (1 - fpr - delta))
    return np.clip(bound, fpr, 1.0)  # a test can always reach TPR = FPR (guessing)


def auc_upper_bound(epsilons, deltas):
    """The largest AUC of any membership test against that privacy profile: the area under
    `tpr_upper_bound` (concave, piecewise linear; integrated on a grid dense near 0 and 1)."""
    return float(np.trapz(tpr_upper_bound(epsilons, deltas), _FPR))


def auc_bound(epsilon, delta):
    """The AUC bound from one (ε, δ) point: valid, but loose next to the whole profile's."""
    _check_budget(delta, 0.0)
    return 1.0 if not math.isfinite(epsilon) else auc_upper_bound([epsilon], [delta])


def gdp_auc_bound(mu):
    """The AUC bound of μ-Gaussian DP (Dong, Roth & Su, 2022): the best test separates N(0, 1) from
    N(μ, 1), and P(N(μ, 1) > N(0, 1)) = Φ(μ / √2)."""
    from scipy.stats import norm

    return float(norm.cdf(mu / math.sqrt(2)))


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


def auc_interval(member_scores, nonmember_scores, level=0.95, resamples=2000, seed=0):
    """A bootstrap interval for the AUC: members and non-members resampled with replacement,
    separately, `resamples` times; the central `level` of the resampled AUCs."""
    from scipy.stats import rankdata

    members, others = np.asarray(member_scores, float), np.asarray(nonmember_scores, float)
    rng = np.random.default_rng(seed)
    m, n = len(members), len(others)
    aucs = []
    for _ in range(resamples):
        a = members[rng.integers(m, size=m)]
        b = others[rng.integers(n, size=n)]
        # Mann-Whitney from ranks (ties get the average rank, so they count half): O(N log N)
        ranks = rankdata(np.concatenate([a, b]))
        aucs.append((ranks[:m].sum() - m * (m + 1) / 2) / (m * n))
    tail = (1 - level) / 2 * 100
    return float(np.percentile(aucs, tail)), float(np.percentile(aucs, 100 - tail))


def tpr_at_fpr(member_scores, nonmember_scores, max_fpr=0.01):
    """The largest true positive rate of "score higher = member" at a false positive rate of at most
    `max_fpr` (Carlini et al., 2022): what an attack finds when it may rarely accuse a non-member.
    With fewer than 1/max_fpr non-members this means accusing none of them."""
    fpr, tpr, _ = roc_auc(member_scores, nonmember_scores)
    return float(tpr[fpr <= max_fpr].max())


# --- auditing: a lower bound on ε from one run (Steinke, Nasr & Jagielski, 2023) ------------------

def audit_guesses(scores, included, guesses_each_side):
    """Guess "in" for the `guesses_each_side` highest-scoring canaries, "out" for the as many lowest,
    abstain on the rest; returns (correct guesses, guesses)."""
    scores, included = np.asarray(scores, float), np.asarray(included, bool)
    k = int(guesses_each_side)
    if not 1 <= k <= len(scores) // 2:
        raise PrivacyInputError(f"guesses_each_side must be in 1..{len(scores) // 2}, got {k}")
    order = np.argsort(scores)
    correct = int(included[order[-k:]].sum() + (~included[order[:k]]).sum())
    return correct, 2 * k


def audit_epsilon(correct, guesses, confidence=0.95, delta=0.0, canaries=None):
    """The empirical lower bound on ε: the largest ε at which an (ε, δ)-DP mechanism would give
    `correct` or more right guesses out of `guesses` with probability below 1 − confidence. Steinke et
    al. (2023): with `canaries` included independently with probability ½, an ε-DP run's count of right
    guesses is dominated by Binomial(guesses, e^ε / (1 + e^ε)) (their Theorem 3.1); for (ε, δ)-DP the
    probability grows by 2·canaries·δ·max_i P[correct − i ≤ Binomial < correct] / i (their approximate-DP
    theorem), so `delta` > 0 needs the number of canaries. 0 when the guesses do no better than chance."""
    from scipy.stats import binom

    if not 0 <= correct <= guesses or guesses < 1:
        raise PrivacyInputError(f"need 0 ≤ correct ≤ guesses and guesses ≥ 1, got {correct}, {guesses}")
    if not 0 < confidence < 1:
        raise PrivacyInputError(f"confidence must be in (0, 1), got {confidence}")
    if not 0 <= delta < 1:
        raise PrivacyInputError(f"delta must be in [0, 1), got {delta}")
    if delta > 0 and (canaries is None or canaries < guesses):
        raise PrivacyInputError(f"delta > 0 needs canaries ≥ guesses (the canaries audited), got {canaries}")

    def tail(eps):  # P[at least `correct` right under (ε, δ)-DP]: grows with ε
        p = 1 / (1 + math.exp(-eps))
        found = binom.sf(correct - 1, guesses, p)
        if delta > 0 and correct > 0:
            i = np.arange(1, correct + 1)
            below = np.cumsum(binom.pmf(correct - i, guesses, p))  # P[correct − i ≤ Bin < correct]
            found += 2 * canaries * delta * float(np.max(below / i))
        return min(found, 1.0)

    beta = 1 - confidence
    if tail(0.0) >= beta:
        return 0.0
    low, high = 0.0, 1.0
    while tail(high) < beta:
        low, high = high, 2 * high
        if high > 1e3:
            return math.inf
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if tail(middle) < beta else (low, middle)
    return low
