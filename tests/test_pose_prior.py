"""The learned pose prior (core.fit.pose_prior): it prefers the poses people take, it does not care where
a body stands, how big it is or how it is turned, and a missing or damaged file says how to restore it."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

from core.errors import MissingWeightsError, WeightsFormatError
from core.fit.pose_prior import PRIOR_FILE, PosePrior, bone_directions
from core.paths import WEIGHTS_DIR
from core.skeletons import SMPL_PARENTS

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data")


@pytest.fixture(scope="module")
def prior():
    return PosePrior(os.path.join(WEIGHTS_DIR, PRIOR_FILE))


def _walk():
    """A development clip's walk (never trained on), retargeted as the suite poses its bodies."""
    from benchmarks.synthetic.retarget import load_bvh, retarget, stand_in_rest_joints
    from benchmarks.synthetic.suite import files_of

    name = "mocap_pool/007_04.bvh"
    assert name in files_of("dev")
    path = os.path.join(DATA, name)
    if not os.path.exists(path):
        pytest.skip(f"{path} is not here")
    return retarget(load_bvh(path), stand_in_rest_joints(), fps=30.0)


def _bent(motion, turns: dict):
    """The motion's joints with local rotations turned: ``{joint: rotation vector}``."""
    from benchmarks.synthetic.retarget import stand_in_rest_joints
    from core.geometry.kinematics import global_rotations, smpl_joints_world
    from core.geometry.rotations import rotvec_to_rotmat

    local = motion.local_rotations.copy()
    for j, rv in turns.items():
        local[:, j] = local[:, j] @ rotvec_to_rotmat(np.asarray(rv, float))
    return smpl_joints_world(global_rotations(local, SMPL_PARENTS), stand_in_rest_joints(), motion.transl)


def test_real_poses_are_likelier_than_broken_ones(prior):
    from core.geometry.rotations import rotmat_to_rotvec

    motion = _walk()
    nll = lambda J: prior.nll(torch.as_tensor(J, dtype=torch.float32)).numpy()  # noqa: E731
    real = nll(motion.joints)
    # Knees bent the wrong way (forwards: they flex about +x).
    bad_knees = nll(_bent(motion, {4: [-1.2, 0, 0], 5: [-1.2, 0, 0]}))
    assert np.median(bad_knees) > np.median(real) + 20
    assert (bad_knees > real).mean() > 0.95
    # Elbows bent backwards past straight: against the way they bend in the walk.
    turns = {}
    for j in (18, 19):
        flex = rotmat_to_rotvec(motion.local_rotations[:, j]).mean(0)
        k = int(np.argmax(np.abs(flex)))
        turns[j] = -1.5 * np.sign(flex[k]) * np.eye(3)[k]
    bad_elbows = nll(_bent(motion, turns))
    assert np.median(bad_elbows) > np.median(real) + 10


def test_bone_directions_ignore_place_size_and_turn():
    rng = np.random.default_rng(0)
    J = rng.normal(size=(5, 24, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    moved = 1.7 * J @ q.T + np.array([3.0, -1.0, 8.0])
    a, b = bone_directions(J), bone_directions(moved)
    assert np.abs(a - b).max() < 1e-9
    t = bone_directions(torch.as_tensor(J))
    assert np.abs(t.numpy() - a).max() < 1e-9  # numpy and torch agree


def test_a_missing_or_damaged_prior_says_how_to_restore_it(tmp_path):
    with pytest.raises(MissingWeightsError, match="git checkout -- weights/pose_prior_gmm.npz"):
        PosePrior(str(tmp_path / PRIOR_FILE))
    bad = tmp_path / PRIOR_FILE
    shutil.copy(os.path.join(WEIGHTS_DIR, PRIOR_FILE), bad)
    with open(bad, "r+b") as fh:
        fh.seek(2000)
        fh.write(b"\x00" * 16)
    with pytest.raises(WeightsFormatError, match="damaged"):
        PosePrior(str(bad))


def test_the_prior_was_trained_on_no_clip_the_suite_scores():
    import json

    from benchmarks.synthetic.suite import files_of

    with np.load(os.path.join(WEIGHTS_DIR, PRIOR_FILE), allow_pickle=False) as z:
        meta = json.loads(str(z["meta_json"]))
    trained = {f["file"].split("data/", 1)[-1] for f in meta["training_files"]}
    assert trained and not trained & (files_of("eval") | files_of("dev"))
    assert "mocap.cs.cmu.edu" in meta["credit"]
