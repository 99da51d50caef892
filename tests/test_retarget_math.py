"""Retargeting maths and bone-map presets without Blender (blender_addon/retarget_math.py, retarget_map.py).

The source is a synthetic Doppel person (the toy result: SMPL-named rig, known motion). Targets are
built here from its rest joints with other names, other rest poses (arms lowered into an A-pose or
raised), other bone rolls, other proportions and an object transform, so each case can fail when the
rest-pose handling, the root scaling or the leg solve is wrong.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "blender_addon"))  # the two modules import neither bpy nor the package

import retarget_map as rmap  # noqa: E402
import retarget_math as rm  # noqa: E402

from core.result.toy import toy_result  # noqa: E402

MIXAMO = {"pelvis": "Hips", "spine1": "Spine", "spine2": "Spine1", "spine3": "Spine2", "neck": "Neck", "head": "Head"}
for side, S in (("left", "Left"), ("right", "Right")):
    MIXAMO.update({f"{side}_collar": f"{S}Shoulder", f"{side}_shoulder": f"{S}Arm", f"{side}_elbow": f"{S}ForeArm",
                   f"{side}_wrist": f"{S}Hand", f"{side}_hand": f"{S}HandEnd", f"{side}_hip": f"{S}UpLeg",
                   f"{side}_knee": f"{S}Leg", f"{side}_ankle": f"{S}Foot", f"{side}_foot": f"{S}ToeBase"})
LIMB = {"left_collar", "left_shoulder", "left_elbow", "left_wrist", "left_hand"}


def _axis_angle(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


@pytest.fixture(scope="module")
def person():
    p = toy_result(n_people=1, n_frames=20, seed=3).people[0]
    return {"bone_names": list(p.bone_names), "bone_parents": p.bone_parents, "bone_heads": p.bone_heads,
            "bone_tails": p.bone_tails, "bone_matrices": p.bone_matrices, "bone_rotations": p.bone_rotations,
            "root_location": p.root_location, "joints": p.joints, "rest_vertices": p.rest_vertices}


def _target_from_source(src: rm.Skeleton, scale=0.8, arm_angle=0.0, leg_stretch=1.0, rng_seed=0):
    """A Mixamo-named copy of ``src``: scaled, arms turned down by ``arm_angle`` about the forward axis
    at the shoulders (A-pose), shins ``leg_stretch`` times as long, every bone rolled at random, standing
    on z = 0 (its lowest bone end), as a character stands on its object's origin."""
    rng = np.random.default_rng(rng_seed)
    names = [MIXAMO[n] for n in src.names]
    heads, tails = src.heads.copy(), src.tails.copy()
    for side, sign in (("left", 1), ("right", -1)):
        pivot = heads[src.index[f"{side}_shoulder"]].copy()
        R = _axis_angle([0, 1, 0], sign * arm_angle)
        for n in (f"{side}_shoulder", f"{side}_elbow", f"{side}_wrist", f"{side}_hand"):
            b = src.index[n]
            heads[b], tails[b] = pivot + R @ (heads[b] - pivot), pivot + R @ (tails[b] - pivot)
        if leg_stretch != 1.0:  # longer shins: the ankle and everything below it moves down
            k, a = src.index[f"{side}_knee"], src.index[f"{side}_ankle"]
            shift = (heads[a] - heads[k]) * (leg_stretch - 1.0)
            for n in (f"{side}_ankle", f"{side}_foot"):
                b = src.index[n]
                heads[b] += shift
                tails[b] += shift
            tails[k] = heads[a]
    mats = np.empty_like(src.matrices)
    for b in range(len(names)):
        y = tails[b] - heads[b]
        y /= np.linalg.norm(y)
        x = np.cross(y, rng.normal(size=3))
        x /= np.linalg.norm(x)
        mats[b] = np.stack([x, y, np.cross(x, y)], 1)
    lift = np.array([0.0, 0.0, min(heads[:, 2].min(), tails[:, 2].min())])
    return rm.Skeleton(tuple(names), src.parents.copy(), (heads - lift) * scale, (tails - lift) * scale, mats)


def _bone_map(src: rm.Skeleton, tgt: rm.Skeleton) -> rm.BoneMap:
    pairs = tuple((MIXAMO[s], s) for s in src.names if s in MIXAMO)
    return rm.BoneMap(pairs=pairs, root="Hips")


def _run(src, tgt, person, M_target=np.eye(4), plant=None):
    """Retarget and pose the target through its own bases (as Blender would): world heads ``(T, B, 3)``."""
    tw = tgt.transformed(M_target)
    plan = rm.make_plan(src, tw, _bone_map(src, tgt), source_floor=rm.floor_height(src))
    G_s, X_s = rm.person_pose(src, person)
    out = rm.retarget(plan, src, tw, G_s, X_s, target_origin=M_target[:3, 3])
    if plant is not None:
        out = rm.plant_feet(plan, src, tw, out, X_s, plant, target_origin=M_target[:3, 3])
    # Into the armature's space, bases there, and posed back to world: what Blender's FK shows.
    Minv = np.linalg.inv(M_target)
    Rm, s = rm.split_scale(M_target[:3, :3])
    want_rot = {b: Rm.T @ out.G[:, m] for m, b in enumerate(out.bones)}
    want_head = {out.root: out.root_head @ Minv[:3, :3].T + Minv[:3, 3]}
    rot, loc, _, _ = rm.bases_from_world(tgt, want_rot, want_head)
    _, X = rm.forward_kinematics(tgt, rot, loc)
    return plan, X @ M_target[:3, :3].T + M_target[:3, 3], X_s


def test_quaternions_and_rotation_between():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(200, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q *= np.where(q[:, :1] < 0, -1, 1)
    np.testing.assert_allclose(rm.matrix_to_quat(rm.quat_to_matrix(q)), q, atol=1e-12)
    a, b = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    R = rm.rotation_between(a, b)
    got = (R @ a[..., None])[..., 0]
    np.testing.assert_allclose(got / np.linalg.norm(got, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
    R = rm.rotation_between(np.array([1.0, 0, 0]), np.array([-1.0, 0, 0]))  # opposite: still a rotation
    np.testing.assert_allclose(R @ [1, 0, 0], [-1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)


def test_forward_kinematics_reproduces_the_result_joints(person):
    src = rm.person_skeleton(person)
    _, X = rm.person_pose(src, person)
    np.testing.assert_allclose(X[:, :24], person["joints"], atol=1e-9)


@pytest.mark.parametrize("arm_angle", [0.0, np.radians(40), np.radians(-25)], ids=["T-pose", "A-pose", "arms-up"])
def test_same_proportions_follow_the_source_joints_exactly(person, arm_angle):
    """Target = the source's rest scaled by 0.8, arms rotated at rest, random rolls, placed by an object
    transform (scale 0.01 of a rig in centimetres, moved): every joint sits where the source's joint is,
    scaled by 0.8 about the captured ground (z = 0), then moved to the target's object origin."""
    src = rm.person_skeleton(person)
    tgt = _target_from_source(src, scale=80.0, arm_angle=arm_angle)  # centimetres, as Mixamo FBX files are
    M = np.eye(4)
    M[:3, :3] = 0.01 * np.eye(3)
    M[:3, 3] = [2.0, -1.0, 0.5]
    plan, X, X_s = _run(src, tgt, person, M)
    assert plan.k == pytest.approx(0.8, rel=1e-9)
    want = M[:3, 3] + 0.8 * X_s[:, :24]
    err = np.linalg.norm(X[:, :24] - want, axis=-1)
    assert err.max() < 1e-6, f"{err.max() * 1000:.3f} mm"


def test_rest_pose_difference_is_what_the_alignment_removes(person):
    """Copying the world deltas without the rest alignment (C = I) leaves the A-posed arm off by tens of
    centimetres: the test above really depends on the rest-pose handling."""
    src = rm.person_skeleton(person)
    tgt = _target_from_source(src, scale=1.0, arm_angle=np.radians(40))
    plan = rm.make_plan(src, tgt, _bone_map(src, tgt), source_floor=rm.floor_height(src))
    plan.C[:] = np.eye(3)
    G_s, X_s = rm.person_pose(src, person)
    out = rm.retarget(plan, src, tgt, G_s, X_s)
    rot, loc, _, X = rm.bases_from_world(tgt, dict(zip(out.bones, np.moveaxis(out.G, 1, 0))), {out.root: out.root_head})
    wrist = src.index["left_wrist"]
    assert np.linalg.norm(X[:, wrist] - X_s[:, wrist], axis=-1).min() > 0.1


def test_object_rotation_is_respected(person):
    """A target whose armature is stored Y-up and turned upright by its object (an FBX import) moves
    like one stored Z-up."""
    src = rm.person_skeleton(person)
    tgt = _target_from_source(src, scale=1.0)
    R_obj = _axis_angle([1, 0, 0], np.pi / 2)
    stored = rm.Skeleton(tgt.names, tgt.parents, tgt.heads @ R_obj, tgt.tails @ R_obj, R_obj.T @ tgt.matrices)
    M = np.eye(4)
    M[:3, :3] = R_obj
    _, X_plain, _ = _run(src, tgt, person)
    _, X_rot, _ = _run(src, stored, person, M)
    np.testing.assert_allclose(X_rot, X_plain, atol=1e-9)


def test_facing_the_other_way_is_turned_round(person):
    """A target that faces +Y at rest still walks the capture's way: its joints match the source's."""
    src = rm.person_skeleton(person)
    tgt = _target_from_source(src, scale=1.0)
    Rz = _axis_angle([0, 0, 1], np.pi)
    turned = rm.Skeleton(tgt.names, tgt.parents, tgt.heads @ Rz.T, tgt.tails @ Rz.T, Rz @ tgt.matrices)
    plan, X, X_s = _run(src, turned, person)
    want = X_s[:, :24]
    assert np.linalg.norm(X[:, :24] - want, axis=-1).max() < 1e-6


def test_two_bone_ik_reaches_and_keeps_lengths():
    rng = np.random.default_rng(1)
    hip = rng.normal(size=(30, 3))
    knee = hip + np.array([0.02, -0.05, -0.45])
    ankle = knee + np.array([0.0, 0.06, -0.42])
    goal = hip + np.array([0.05, 0.1, -0.7]) + rng.normal(0, 0.05, (30, 3))
    R1, R2 = rm.two_bone_ik(hip, knee, ankle, goal)
    new_knee = hip + (R1 @ (knee - hip)[..., None])[..., 0]
    new_ankle = new_knee + (R2 @ (ankle - knee)[..., None])[..., 0]
    np.testing.assert_allclose(new_ankle, goal, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(new_knee - hip, axis=1), np.linalg.norm(knee - hip, axis=1), atol=1e-12)


def test_planted_feet_follow_the_scaled_source_ankle(person):
    """Shins 15 % longer than the source's (other proportions): on contact frames the leg solve puts the
    ankle exactly where the scaled source ankle is, so a planted source foot stays planted; without
    the solve it is millimetres to centimetres off."""
    src = rm.person_skeleton(person)
    tgt = _target_from_source(src, scale=1.0, leg_stretch=1.15)
    T = len(person["bone_rotations"])
    contacts = np.zeros((T, 2), bool)
    contacts[4:12, 0] = True
    contacts[8:18, 1] = True
    plan, X_plain, X_s = _run(src, tgt, person)
    _, X_ik, _ = _run(src, tgt, person, plant=contacts)
    for col, side in enumerate(("left", "right")):
        a = src.index[f"{side}_ankle"]
        goal = plan.k * X_s[:, a]  # scaled about the captured ground (z = 0) onto the target's floor (z = 0)
        on = contacts[:, col]
        assert np.linalg.norm(X_ik[on, a] - goal[on], axis=-1).max() < 1e-6
        assert np.linalg.norm(X_plain[on, a] - goal[on], axis=-1).max() > 0.005
        skate_src = rm.foot_skate(X_s[:, a], on)
        assert rm.foot_skate(X_ik[:, a], on) <= plan.k * skate_src + 1e-9
        # Off contact (beyond the fade) the leg is the plain transfer.
        far = rm.contact_weights(on) == 0
        np.testing.assert_allclose(X_ik[far, a], X_plain[far, a], atol=1e-9)


def test_foot_skate_measures_horizontal_motion_on_contact_pairs():
    pos = np.zeros((5, 3))
    pos[:, 0] = [0, 0.001, 0.003, 0.1, 0.2]
    pos[:, 2] = [0, 0.5, 0, 0, 0]  # vertical motion does not count
    assert rm.foot_skate(pos, np.array([1, 1, 1, 0, 1], bool)) == pytest.approx(0.0015)
    assert rm.foot_skate(pos, np.zeros(5, bool)) == 0.0


# ---------------------------------------------------------------- presets

RIGS = {
    "RIGIFY": ["root", "torso", "hips", "chest", "neck", "head", "MCH-torso.parent", "ORG-spine", "DEF-spine"]
    + [f"{b}.{s}" for s in "LR" for b in ("shoulder", "upper_arm_fk", "forearm_fk", "hand_fk", "thigh_fk", "shin_fk",
                                            "foot_fk", "toe_fk", "thigh_parent", "upper_arm_parent", "DEF-thigh", "ORG-thigh")],
    "METARIG": ["spine", "spine.001", "spine.002", "spine.003", "spine.004", "spine.005", "spine.006"]
    + [f"{b}.{s}" for s in "LR" for b in ("shoulder", "upper_arm", "forearm", "hand", "thigh", "shin", "foot", "toe", "heel.02")],
    "MIXAMO": ["mixamorig:" + n for n in ["Hips", "Spine", "Spine1", "Spine2", "Neck", "Head"]
               + [f"{s}{b}" for s in ("Left", "Right") for b in ("Shoulder", "Arm", "ForeArm", "Hand", "UpLeg", "Leg", "Foot", "ToeBase")]],
    "UE5": ["root", "pelvis", "spine_01", "spine_02", "spine_03", "spine_04", "spine_05", "neck_01", "neck_02", "head"]
    + [f"{b}_{s}" for s in "lr" for b in ("clavicle", "upperarm", "lowerarm", "hand", "thigh", "calf", "foot", "ball")],
    "VRM": ["J_Bip_C_Hips", "J_Bip_C_Spine", "J_Bip_C_Chest", "J_Bip_C_UpperChest", "J_Bip_C_Neck", "J_Bip_C_Head"]
    + [f"J_Bip_{s}_{b}" for s in "LR" for b in ("Shoulder", "UpperArm", "LowerArm", "Hand", "UpperLeg", "LowerLeg", "Foot", "ToeBase")],
}


def test_shipped_presets_are_valid_and_map_to_source_bones(person):
    presets = rmap.load_presets()
    assert set(presets) == set(rmap.PRESET_IDS)
    anny_fingers = {f"finger{n}-{i}.{s}" for n in range(1, 6) for i in range(1, 4) for s in "LR"}
    known = set(person["bone_names"]) | anny_fingers
    for p in presets.values():
        for v in p["variants"]:
            assert set(v["bones"].values()) <= known, (p["id"], set(v["bones"].values()) - known)
            assert set(rmap.REQUIRED_SOURCE) <= set(v["bones"].values())
        # Every shipped rig has fingers: every preset maps all 30 finger bones, each to one bone of its own.
        for v in p["variants"]:
            fingers = {t: src for t, src in v["bones"].items() if src in anny_fingers}
            assert set(fingers.values()) == anny_fingers, (p["id"], v.get("name"), anny_fingers - set(fingers.values()))


@pytest.mark.parametrize("preset_id", sorted(RIGS))
def test_auto_recognises_each_rig(preset_id):
    r = rmap.detect(rmap.load_presets(), RIGS[preset_id])
    assert r.preset == preset_id
    rmap.check_usable(r)
    assert r.root in RIGS[preset_id]
    assert all(t in RIGS[preset_id] for t, _ in r.pairs)


def test_mixamo_without_prefix_and_vrm_humanoid_names():
    presets = rmap.load_presets()
    bare = [n.split(":")[1] for n in RIGS["MIXAMO"]]
    r = rmap.detect(presets, bare)
    assert r.preset == "MIXAMO" and r.root == "Hips"
    vrm = ["hips", "spine", "chest", "upperChest", "neck", "head"] + [
        f"{s}{b}" for s in ("left", "right") for b in ("Shoulder", "UpperArm", "LowerArm", "Hand", "UpperLeg", "LowerLeg", "Foot", "Toes")]
    r = rmap.detect(presets, vrm)
    assert (r.preset, r.variant, r.root) == ("VRM", "VRM humanoid", "hips")
    assert "finger2-1.L" in r.missing and "fingers" not in rmap.missing_note(r).split(", ")[0]
    assert rmap.missing_note(r).endswith("30 finger bones")


def test_rigify_generated_rig_uses_fk_controls_and_def_bones_without_them():
    presets = rmap.load_presets()
    r = rmap.resolve(presets["RIGIFY"], RIGS["RIGIFY"])
    assert r.variant == "FK controls" and r.root == "torso"
    assert r.properties == {f"{b}_parent.{s}": {"IK_FK": 1.0} for b in ("upper_arm", "thigh") for s in "LR"}
    defs = ["DEF-spine", "DEF-spine.001", "DEF-spine.003"] + [f"DEF-{b}.{s}" for s in "LR" for b in ("thigh", "shin", "foot", "upper_arm")]
    r = rmap.resolve(presets["RIGIFY"], defs)
    assert r.variant == "DEF bones" and r.root == "DEF-spine"


def test_unrecognisable_armature_is_a_clear_error():
    with pytest.raises(rmap.PresetError, match="no preset recognises"):
        rmap.detect(rmap.load_presets(), ["Bone", "Bone.001", "Bone.002", "Cube"])


def test_saved_preset_round_trip_and_precedence(tmp_path):
    pairs = [("Pelvis", "pelvis"), ("L_Thigh", "left_hip"), ("R_Thigh", "right_hip"), ("L_Calf", "left_knee"),
             ("R_Calf", "right_knee"), ("", "left_ankle")]
    p = rmap.preset_from_pairs("MY_RIG", "My rig", pairs, "Pelvis")
    path = rmap.save_preset(p, str(tmp_path))
    assert os.path.basename(path) == "my_rig.json"
    loaded = rmap.load_presets(str(tmp_path))
    assert loaded["MY_RIG"]["variants"][0]["bones"] == {t: s for t, s in pairs if t}
    assert rmap.detect(loaded, ["Pelvis", "L_Thigh", "R_Thigh", "L_Calf", "R_Calf"]).preset == "MY_RIG"
    # A user copy of a shipped preset replaces it; a broken user file is reported, not fatal.
    mix = json.load(open(os.path.join(rmap.SHIPPED_DIR, "mixamo.json")))
    mix["name"] = "Mixamo (mine)"
    json.dump(mix, open(tmp_path / "mixamo_copy.json", "w"))
    (tmp_path / "broken.json").write_text("{not json")
    loaded = rmap.load_presets(str(tmp_path))
    assert loaded["MIXAMO"]["name"] == "Mixamo (mine)"
    assert any("broken.json" in e for e in loaded["_errors"])
    with pytest.raises(rmap.PresetError, match="root"):
        rmap.preset_from_pairs("BAD", "bad", pairs, "Nowhere")


def test_a_hand_aligns_on_its_own_axis_whatever_its_thumb():
    """A target whose fingers are mapped and whose thumb sits 35 degrees round the hand's axis from the
    person's (modellers place thumbs differently): its hand still points where the person's hand
    points (the wrist's segment runs to the middle knuckle, never to the thumb), and every finger bone,
    thumb included, where the person's finger bone points, as the fingers curl."""
    from core.geometry.rig import bone_matrices_from_heads_tails
    from tests.hand_fixtures import curled_result

    p = curled_result(6).people[0]
    person = {k: getattr(p, k) for k in ("bone_names", "bone_parents", "bone_heads", "bone_tails", "bone_matrices",
                                         "bone_rotations", "root_location")}
    src = rm.person_skeleton(person)
    names = ["pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "spine1", "spine2", "spine3",
             "left_collar", "left_shoulder", "left_elbow", "left_wrist"]
    names += [f"finger{n}-{k}.L" for n in range(1, 6) for k in (1, 2, 3)]
    pos = {n: i for i, n in enumerate(names)}

    def kept_parent(n):  # the nearest ancestor the target keeps
        b = src.parents[src.index[n]]
        while b >= 0 and src.names[b] not in pos:
            b = src.parents[b]
        return pos[src.names[b]] if b >= 0 else -1

    idx = [src.index[n] for n in names]
    heads, tails = src.heads[idx].copy(), src.tails[idx].copy()
    wrist = heads[pos["left_wrist"]]
    turn = _axis_angle(tails[pos["left_wrist"]] - wrist, np.radians(35))
    for k in (1, 2, 3):
        i = pos[f"finger1-{k}.L"]
        heads[i], tails[i] = wrist + turn @ (heads[i] - wrist), wrist + turn @ (tails[i] - wrist)
    tgt = rm.Skeleton(tuple(f"T_{n}" for n in names), np.array([kept_parent(n) for n in names]), heads, tails,
                      bone_matrices_from_heads_tails(heads, tails))
    plan = rm.make_plan(src, tgt, rm.BoneMap(tuple((f"T_{n}", n) for n in names), "T_pelvis"))
    G, _ = rm.person_pose(src, person)
    out = rm.retarget(plan, src, tgt, G, rm.person_pose(src, person)[1])
    check = ["left_wrist"] + [n for n in names if n.startswith("finger")]
    got = np.stack([out.G[:, out.bones.index(pos[n]), :, 1] for n in check], 1)  # each bone's y: head -> tail
    want = np.stack([G[:, src.index[n], :, 1] for n in check], 1)
    err = np.degrees(np.arccos(np.clip(np.sum(got * want, -1), -1.0, 1.0)))
    assert err.max() < 0.5, dict(zip(check, err.max(0).round(2)))
