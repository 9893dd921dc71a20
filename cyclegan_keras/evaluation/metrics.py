"""FID and KID on feature arrays: the statistics behind published image-translation scores.

Both take features ``[N, D]`` of two image sets (Inception pool features for the published numbers,
or any other network's). Pure numpy, float64 where it matters.
"""

from __future__ import annotations

import numpy as np

from cyclegan_keras.errors import UsageError


def _features(name: str, features) -> np.ndarray:
    array = np.asarray(features)
    if array.ndim != 2 or array.shape[0] < 2:
        raise UsageError(f"{name} must be a [N, D] feature array with N >= 2. Received: shape={array.shape}")
    if not np.all(np.isfinite(array)):
        raise UsageError(f"{name} holds NaN or Inf values.")
    return array


def frechet_distance(features_a, features_b) -> float:
    """The Fréchet distance between Gaussians fitted to two feature sets (FID on Inception features).

    ``|mu_a - mu_b|^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^(1/2))``, in float64. The trace of the
    matrix square root is the sum of the square roots of the eigenvalues of ``S_a S_b``, which are
    those of a symmetric positive semi-definite matrix of side ``min(N_a, N_b, D)``: exact, no
    iterative ``sqrtm``, and no failure on the near-singular covariances that fewer images than
    dimensions give (tiny negative eigenvalues from round-off count as zero).

    Args:
        features_a: ``[N_a, D]`` features of one image set.
        features_b: ``[N_b, D]`` features of the other.

    Returns:
        The distance (0 for identical sets).
    """
    a = _features("features_a", features_a).astype(np.float64)
    b = _features("features_b", features_b).astype(np.float64)
    if a.shape[1] != b.shape[1]:
        raise UsageError(f"Feature sizes differ: {a.shape[1]} and {b.shape[1]}.")
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    # Centred and scaled so that S = X^T X.
    xa = (a - mean_a) / np.sqrt(a.shape[0] - 1)
    xb = (b - mean_b) / np.sqrt(b.shape[0] - 1)
    dims = a.shape[1]
    if min(a.shape[0], b.shape[0]) < dims:
        # S_a S_b = Xa^T (Xa Xb^T) Xb shares its non-zero eigenvalues with C C^T, C = Xa Xb^T.
        cross = xa @ xb.T
        product = cross @ cross.T
    else:
        # S_a S_b shares its eigenvalues with S_a^(1/2) S_b S_a^(1/2), which is symmetric.
        values, vectors = np.linalg.eigh(xa.T @ xa)
        root = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
        product = root @ (xb.T @ xb) @ root
    eigenvalues = np.linalg.eigvalsh((product + product.T) / 2.0)
    trace_root = float(np.sum(np.sqrt(np.clip(eigenvalues, 0.0, None))))
    distance = (
        float(np.sum((mean_a - mean_b) ** 2))
        + float(np.sum(xa * xa))
        + float(np.sum(xb * xb))
        - 2 * trace_root
    )
    return max(distance, 0.0)


def kernel_inception_distance(
    features_a,
    features_b,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int | None = 0,
) -> tuple[float, float]:
    """The kernel distance (KID on Inception features) of Bińkowski et al. (2018).

    The unbiased estimate of the squared maximum mean discrepancy with the cubic polynomial kernel
    ``k(x, y) = (x . y / D + 1)^3``, averaged over ``subsets`` random subsets of ``subset_size``
    images drawn without replacement from each set (capped at the smaller set's size).

    Args:
        features_a: ``[N_a, D]`` features of one image set.
        features_b: ``[N_b, D]`` features of the other.
        subsets: how many subsets to average over.
        subset_size: images per subset and set.
        seed: seed of the subset draws (None: fresh randomness).

    Memory: three ``N_a x N_b``-sized float64 kernel matrices (0.6 GB for 5000 vs 5000).

    Returns:
        ``(mean, std)`` over the subsets.
    """
    a = _features("features_a", features_a)
    b = _features("features_b", features_b)
    if a.shape[1] != b.shape[1]:
        raise UsageError(f"Feature sizes differ: {a.shape[1]} and {b.shape[1]}.")
    if subsets < 1 or subset_size < 2:
        raise UsageError(f"Need subsets >= 1 and subset_size >= 2. Received: {subsets=}, {subset_size=}")
    m = min(subset_size, a.shape[0], b.shape[0])
    dims = a.shape[1]
    rng = np.random.default_rng(seed)
    # Drawn in the usual order (each subset's A rows, then its B rows), so a seed picks the subsets
    # that other implementations pick.
    picks = [
        (rng.choice(a.shape[0], m, replace=False), rng.choice(b.shape[0], m, replace=False))
        for _ in range(subsets)
    ]
    picks_a, picks_b = [p for p, _ in picks], [p for _, p in picks]
    # Every subset's kernel values are entries of three whole kernel matrices (float32 products, the
    # cubic kernel in float64). A subset's sum over K is v^T K v for its 0/1 indicator v, so one
    # matrix product against all indicators gives every subset's sums at once.
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    k_aa = _cubic(a32 @ a32.T, dims)
    k_bb = _cubic(b32 @ b32.T, dims)
    k_ab = _cubic(a32 @ b32.T, dims)
    v_a, v_b = _indicators(picks_a, a.shape[0]), _indicators(picks_b, b.shape[0])
    sum_aa = np.einsum("ik,ik->k", v_a, k_aa @ v_a) - v_a.T @ np.diag(k_aa)
    sum_bb = np.einsum("ik,ik->k", v_b, k_bb @ v_b) - v_b.T @ np.diag(k_bb)
    sum_ab = np.einsum("ik,ik->k", v_a, k_ab @ v_b)
    values = (sum_aa + sum_bb) / (m * (m - 1)) - 2.0 * sum_ab / (m * m)
    return float(values.mean()), float(values.std())


def _cubic(gram: np.ndarray, dims: int) -> np.ndarray:
    return (gram.astype(np.float64) / dims + 1.0) ** 3


def _indicators(picks: list[np.ndarray], n: int) -> np.ndarray:
    """``[n, len(picks)]``: column k is 1 at the rows subset k picked."""
    out = np.zeros((n, len(picks)))
    for k, rows in enumerate(picks):
        out[rows, k] = 1.0
    return out
