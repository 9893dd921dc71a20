"""FID and KID statistics: this package against the scipy ``sqrtm`` reference, in the same run.

    python bench/metrics.py            # 140 vs 120 and 5000 vs 5000 features of 2048 dimensions

The features are random but shaped like Inception pool features (non-negative, skewed). The
reference is the formula most FID code uses: ``scipy.linalg.sqrtm(S1 @ S2)`` on the full 2048 x 2048
covariances, and KID's three kernel matrices computed per subset in float64.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import time

import numpy as np
import scipy.linalg

from cyclegan_keras.evaluation.metrics import frechet_distance, kernel_inception_distance


def reference_fid(a: np.ndarray, b: np.ndarray) -> float:
    m1, m2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(root))


def reference_kid(a, b, subsets=100, subset_size=1000, seed=0):
    rng = np.random.default_rng(seed)
    m, d = min(subset_size, len(a), len(b)), a.shape[1]
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        values.append(
            (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
        )
    return float(np.mean(values))


def timed(run, *args):
    start = time.perf_counter()
    value = run(*args)
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dims", type=int, default=2048)
    args = parser.parse_args()
    flags = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    isa = sorted(
        {f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16") if f" {f} " in flags}
    )
    print(f"{platform.processor() or platform.machine()}, flags: {', '.join(isa)}; numpy {np.__version__}")
    rng = np.random.default_rng(0)
    print("| case | ours FID | scipy FID | FID s (ours / scipy) | ours KID | ref KID | KID s (ours / ref) |")
    print("|---|---|---|---|---|---|---|")
    for n1, n2 in ((140, 120), (5000, 5000)):
        a = rng.gamma(1.5, 0.3, size=(n1, args.dims))
        b = rng.gamma(1.6, 0.3, size=(n2, args.dims))
        fid, fid_s = timed(frechet_distance, a, b)
        ref, ref_s = timed(reference_fid, a, b)
        (kid, _), kid_s = timed(kernel_inception_distance, a, b)
        rkid, rkid_s = timed(reference_kid, a, b)
        print(f"| {n1} vs {n2} | {fid:.4f} | {ref:.4f} | {fid_s:.2f} / {ref_s:.2f} ({ref_s / fid_s:.1f}x) | "
              f"{kid:.6f} | {rkid:.6f} | {kid_s:.2f} / {rkid_s:.2f} ({rkid_s / kid_s:.1f}x) |")  # fmt: skip


if __name__ == "__main__":
    main()
