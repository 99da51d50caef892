"""Train the fit's learned pose prior: a Gaussian mixture over the body's joint rotations, from the
training clips of the CMU motion-capture pool (never the synthetic suite's evaluation or development
clips: ``benchmarks.synthetic.suite.training_files``).

Each pool file is retargeted onto the rest skeleton of the fit's default body (Anny at the stature
prior's median) with ``benchmarks.synthetic.retarget``, the solver that poses the synthetic suite's
bodies, at 30 frames a second; every frame, and its mirror
image (left and right swapped), gives one sample: the local rotations of joints 1-21 (hips to wrists)
as half-angle rotation vectors, ``sin(angle / 2) * axis``, 63 numbers, smooth and one-to-one up to a
half turn. A mixture of full-covariance Gaussians is fitted by expectation-maximisation.

    python scripts/train_pose_prior.py                       # writes weights/pose_prior_gmm.npz
    python scripts/train_pose_prior.py --components 8 -o /tmp/prior.npz

Data: CMU Graphics Lab Motion Capture Database, mocap.cs.cmu.edu; the database was created with funding
from NSF EIA-0196217. The trained file is released with the project (Apache-2.0); keep this credit with it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from core.fit.pose_prior import PRIOR_BONES, bone_directions  # noqa: E402
from core.skeletons import SMPL_JOINT_NAMES  # noqa: E402

def mirror_joints(joints: np.ndarray) -> np.ndarray:
    """Joints ``(T, 24, 3)`` of the mirror-image motion: reflected in a vertical plane, left and right
    swapped."""
    swap = [SMPL_JOINT_NAMES.index(n.replace("left", "#").replace("right", "left").replace("#", "right"))
            for n in SMPL_JOINT_NAMES]
    out = joints[:, swap].copy()
    out[..., 0] *= -1.0
    return out


def rest_skeleton() -> np.ndarray:
    """The rest joints ``(24, 3)`` the fit's rotations are relative to: the default Anny body at the
    stature prior's median (the centre of the fit's shape prior)."""
    import torch

    from core.body import load_body_model
    from core.config import FitConfig
    from core.fit.shape import prior_shape

    body = load_body_model("anny")
    with torch.no_grad():
        return body.rest_joints(prior_shape(body, FitConfig().stature_mean)).double().cpu().numpy().reshape(24, 3)


def load_samples(files: list[str], fps: float) -> tuple[np.ndarray, list[dict]]:
    from benchmarks.synthetic.retarget import load_bvh, retarget

    J = rest_skeleton()
    out, used = [], []
    for path in files:
        joints = retarget(load_bvh(path), J, fps=fps).joints
        for P in (joints, mirror_joints(joints)):
            out.append(bone_directions(P))
        used.append({"file": os.path.relpath(path, os.path.dirname(ROOT)), "frames": int(len(joints))})
        print(f"  {os.path.basename(path)}: {len(joints)} frames", flush=True)
    return np.concatenate(out), used


def fit_gmm(X: np.ndarray, k: int, iterations: int, reg: float, seed: int = 0):
    """Expectation-maximisation for a full-covariance Gaussian mixture (k-means++ start). Returns the
    means ``(k, D)``, covariances ``(k, D, D)`` and weights ``(k,)``."""
    rng = np.random.default_rng(seed)
    N, D = X.shape
    centres = [X[rng.integers(N)]]
    for _ in range(1, k):
        d2 = np.min([((X - c) ** 2).sum(1) for c in centres], axis=0)
        centres.append(X[rng.choice(N, p=d2 / d2.sum())])
    mu = np.array(centres)
    resp = np.eye(k)[np.argmin(((X[:, None] - mu[None]) ** 2).sum(-1), 1)]
    prev = -np.inf
    for it in range(iterations):
        nk = resp.sum(0) + 1e-9
        w = nk / N
        mu = resp.T @ X / nk[:, None]
        cov = np.empty((k, D, D))
        for j in range(k):
            Y = X - mu[j]
            cov[j] = (resp[:, j, None] * Y).T @ Y / nk[j] + reg * np.eye(D)
        logp = log_densities(X, mu, cov, w)
        top = logp.max(1, keepdims=True)
        ll = top[:, 0] + np.log(np.exp(logp - top).sum(1))
        resp = np.exp(logp - ll[:, None])
        mean_ll = float(ll.mean())
        if it % 10 == 0:
            print(f"  EM {it}: mean log-likelihood {mean_ll:.2f}", flush=True)
        if mean_ll - prev < 1e-4:
            break
        prev = mean_ll
    return mu, cov, w


def log_densities(X: np.ndarray, mu: np.ndarray, cov: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``(N, k)`` log of weight times density of each component at each sample."""
    N, D = X.shape
    out = np.empty((N, len(mu)))
    for j in range(len(mu)):
        L = np.linalg.cholesky(cov[j])
        z = np.linalg.solve(L, (X - mu[j]).T)
        out[:, j] = np.log(w[j]) - 0.5 * (z * z).sum(0) - np.log(np.diag(L)).sum() - 0.5 * D * np.log(2 * np.pi)
    return out


def main(argv=None) -> int:
    from benchmarks.synthetic.suite import DATA, files_of, training_files

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--out", default=os.path.join(ROOT, "weights", "pose_prior_gmm.npz"))
    ap.add_argument("--components", type=int, default=8)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--reg", type=float, default=1e-2, help="added to every covariance's diagonal")
    ap.add_argument("--data", default=DATA)
    args = ap.parse_args(argv)

    files = training_files(args.data)
    held_out = files_of("eval") | files_of("dev")
    assert not held_out & set(files), "a training file is an evaluation or development clip"
    t0 = time.time()
    print(f"training clips: {len(files)} (held out: {len(held_out)} evaluation and development files)")
    X, used = load_samples([os.path.join(args.data, f) for f in files], args.fps)
    print(f"samples: {len(X)} (with mirror images), {X.shape[1]} numbers each")
    mu, cov, w = fit_gmm(X, args.components, args.iterations, args.reg)
    prec_chol = np.linalg.cholesky(np.linalg.inv(cov))  # precision = P P^T
    log_norm = np.log(w) + np.log(np.abs(np.diagonal(prec_chol, axis1=1, axis2=2))).sum(1) \
        - 0.5 * X.shape[1] * np.log(2 * np.pi)
    meta = {"bones": [[SMPL_JOINT_NAMES[a], SMPL_JOINT_NAMES[b]] for a, b in PRIOR_BONES],
            "features": "unit bone directions in the torso frame (core.fit.pose_prior.bone_directions)",
            "components": args.components, "fps": args.fps, "reg": args.reg, "samples": int(len(X)),
            "training_files": used,
            "credit": "CMU Graphics Lab Motion Capture Database, mocap.cs.cmu.edu; created with funding "
                      "from NSF EIA-0196217", "licence": "Apache-2.0",
            "trained_by": "scripts/train_pose_prior.py"}
    tmp = args.out + ".tmp.npz"
    np.savez(tmp, means=mu.astype(np.float32), prec_chol=prec_chol.astype(np.float32),
             log_norm=log_norm.astype(np.float32), bones=np.asarray(PRIOR_BONES, np.int64),
             meta_json=np.asarray(json.dumps(meta)))
    os.replace(tmp, args.out)
    print(f"wrote {args.out} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
