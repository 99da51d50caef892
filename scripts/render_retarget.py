"""Render a Rigify character driven by a capture, through the capture camera, over the video frame.

    python scripts/render_retarget.py RESULT.npz --frame N -o retarget.png [--video VIDEO]

For each captured person: Blender's Human Meta-Rig (its own proportions, scaled to the person's hip
height), generated into a Rigify rig, with a plain mannequin mesh (one rounded box per deform bone,
rigidly skinned); then ``doppel.retarget`` (AUTO) bakes the person's action onto it and the person's own
body is hidden. The frame is rendered as ``render_check.py`` renders it (Cycles, CPU). The picture in
docs/ADDON.md was made this way from the sample.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (ROOT, os.path.join(ROOT, "scripts")):
    if path not in sys.path:
        sys.path.insert(0, path)

BODY = ("DEF-spine", "DEF-shoulder", "DEF-upper_arm", "DEF-forearm", "DEF-hand", "DEF-thigh", "DEF-shin", "DEF-foot",
        "DEF-toe")  # the deform bones the mannequin has a box for (no face, fingers, breasts)


def mannequin(rig, colour):
    """A mesh of one tapered box per deform bone of ``rig`` (rigidly weighted to it), deformed by it."""
    import bpy

    verts, faces, groups = [], [], []
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    for bone in rig.data.bones:
        if not bone.name.startswith(BODY):
            continue
        M = np.array(bone.matrix_local)
        width = 0.08 if bone.name == "DEF-spine.006" else 0.07 if "spine" in bone.name else \
            0.03 if bone.name.startswith(("DEF-hand", "DEF-foot", "DEF-toe")) else 0.04
        base = len(verts)
        for y, w in ((0.0, width), (bone.length, width * 0.8)):
            for x in (-w, w):
                for z in (-w, w):
                    verts.append(tuple((M @ np.array([x, y, z, 1.0]))[:3]))
        faces += [tuple(base + i for i in q) for q in quads]
        groups.append((bone.name, list(range(base, base + 8))))
    me = bpy.data.meshes.new(rig.name + "_Mannequin")
    me.from_pydata(verts, [], faces)
    obj = bpy.data.objects.new(rig.name + "_Mannequin", me)
    bpy.context.scene.collection.objects.link(obj)
    obj.matrix_world = rig.matrix_world
    for name, ids in groups:
        obj.vertex_groups.new(name=name).add(ids, 1.0, "REPLACE")
    obj.modifiers.new("Armature", "ARMATURE").object = rig
    obj.modifiers.new("Bevel", "BEVEL").width = 0.01
    mat = bpy.data.materials.new(rig.name + "_Material")
    mat.diffuse_color = (*colour, 1.0)
    if getattr(mat, "node_tree", None) is None and hasattr(mat, "use_nodes"):
        mat.use_nodes = True
    for node in mat.node_tree.nodes:
        if node.type == "BSDF_PRINCIPLED":
            node.inputs["Base Color"].default_value = (*colour, 1.0)
    me.materials.append(mat)
    return obj


def rigify_characters(context, summary, result):
    import addon_utils
    import bpy

    addon_utils.enable("rigify", default_set=True)
    addon_utils.enable("blender_addon", default_set=True)  # (the render's factory reset turned it off)
    for i, (person, arm) in enumerate(zip(result["people"], summary["armatures"])):
        bpy.ops.object.armature_human_metarig_add()
        meta = context.object
        # The Meta-Rig's own proportions, sized so its hips are as high as the person's.
        heads = np.asarray(person["bone_heads"])
        hip = heads[list(person["bone_names"]).index("left_hip"), 2] - np.asarray(person["rest_vertices"])[:, 2].min()
        meta_hip = meta.data.bones["thigh.L"].head_local.z
        meta.scale = (hip / meta_hip,) * 3
        bpy.ops.object.transform_apply(scale=True)
        bpy.ops.pose.rigify_generate()
        rig = context.view_layer.objects.active
        rig.name = f"{arm.name}_Rigify"
        bpy.data.objects.remove(meta)
        mannequin(rig, [(0.85, 0.75, 0.35), (0.35, 0.75, 0.85)][i % 2])
        assert bpy.ops.doppel.retarget(source=arm.name, target=rig.name, preset="AUTO") == {"FINISHED"}
        for child in arm.children:
            child.hide_render = True
        arm.hide_render = True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("result", help="result file (.npz)")
    ap.add_argument("--frame", type=int, default=0, help="video frame to render (0-based)")
    ap.add_argument("-o", "--output", default="retarget.png", help="PNG to write")
    ap.add_argument("--video", help="video for the background (default: the result's video path)")
    ap.add_argument("--samples", type=int, default=8, help="Cycles samples (default 8)")
    ap.add_argument("--scale", type=int, default=50, help="resolution percentage (default 50)")
    args = ap.parse_args(argv)
    import render_check

    print(render_check.render(args.result, args.frame, args.output, args.video, args.samples, args.scale, False,
                              prepare=rigify_characters))
    return 0


if __name__ == "__main__":
    sys.exit(main())
