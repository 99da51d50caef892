"""The two halves stay apart, and speak the same file format.

- ``core`` never imports Blender (``bpy``, ``mathutils``), not even indirectly: every module is imported
  in a fresh interpreter where importing them fails.
- The add-on never imports torch or the engine package into Blender's interpreter.
- The add-on's result reader (numpy only) reads what core's writer writes, field for field, and both
  name people by the same rule.
- The add-on's panel defaults are the engine's defaults (one source: core/defaults.json).
"""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "core"
ADDON = REPO / "blender_addon"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_core_never_imports_blender():
    offenders = {str(p.relative_to(REPO)): sorted(_imports(p) & {"bpy", "mathutils", "bmesh", "addon_utils"})
                 for p in CORE.rglob("*.py")}
    assert not {k: v for k, v in offenders.items() if v}
    # ... not even through a dependency: import every module with Blender's modules made unimportable.
    script = """
import importlib, pkgutil, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("bpy", "mathutils", "bmesh"):
            raise ImportError("core must not import " + name)
        return None
sys.meta_path.insert(0, Block())
import core
names = [m.name for m in pkgutil.walk_packages(core.__path__, "core.") if not m.name.endswith("__main__")]
for n in names:
    importlib.import_module(n)
print(len(names))
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout.split()[-1]) > 40  # every module of the engine was imported


def test_addon_never_imports_torch_or_the_engine():
    for p in ADDON.rglob("*.py"):
        bad = _imports(p) & {"torch", "core", "cv2", "scipy", "anny", "smplx"}
        assert not bad, f"{p.relative_to(REPO)} imports {sorted(bad)}"


def _addon_module(name: str):
    """An add-on module that needs no bpy, loaded from its file (the package itself imports bpy)."""
    spec = importlib.util.spec_from_file_location(f"doppel_addon_{name}", ADDON / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_addon_reader_reads_what_core_writes(tmp_path):
    from core.result import person_name, write_result
    from core.result.schema import SCHEMA_VERSION
    from core.result.toy import toy_result

    reader = _addon_module("result_file")
    assert reader.SCHEMA_VERSION == SCHEMA_VERSION
    res = toy_result(n_people=3, n_frames=9, stagger=2)
    path = tmp_path / "toy.npz"
    write_result(path, res)
    got = reader.read_result_file(str(path))
    assert len(got["people"]) == 3
    np.testing.assert_array_equal(got["faces"], res.faces)
    for i, (p, q) in enumerate(zip(res.people, got["people"])):
        assert q["name"] == person_name(i) == f"Person {i + 1}"
        assert q["bone_names"] == list(p.bone_names)
        for field in reader._PERSON_ARRAYS:
            if field != "bone_names":
                np.testing.assert_allclose(q[field], np.asarray(getattr(p, field)), atol=1e-6, err_msg=field)
    assert got["meta"]["camera"]["T_world_from_cam"] == res.meta["camera"]["T_world_from_cam"]
    # The add-on's fallback name for files without names is the same rule.
    assert reader.person_name(4) == person_name(4)


def test_addon_defaults_are_the_engine_defaults():
    from core.config import DEFAULTS, CaptureConfig

    defaults = _addon_module("defaults").engine_defaults()
    assert defaults == DEFAULTS
    c = CaptureConfig()
    assert (defaults["max_people"], defaults["smoothing"], defaults["densepose_every"], defaults["body"]) == \
        (c.max_people, c.smoothing, c.densepose_every, c.body)
    assert json.loads((CORE / "defaults.json").read_text())["max_people"] == c.max_people


def _rewrite_members(src: Path, dst: Path, replace: dict, compress: bool = False) -> None:
    """A copy of the .npz ``src`` with members replaced or added (name -> raw .npy bytes)."""
    import zipfile

    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", method) as zout:
        for name in zin.namelist():
            zout.writestr(name, replace.get(name, zin.read(name)))
        for name, data in replace.items():
            if name not in zin.namelist():
                zout.writestr(name, data)


def _npy(array=None, header: dict | None = None) -> bytes:
    import io

    buf = io.BytesIO()
    if header is not None:  # a header alone: declares what it likes, holds 64 bytes
        np.lib.format.write_array_header_1_0(buf, header)
        return buf.getvalue() + b"\0" * 64
    np.lib.format.write_array(buf, array, allow_pickle=True)
    return buf.getvalue()


def test_both_readers_check_declared_shapes_and_read_only_their_members(tmp_path):
    """Case 6: a huge declared shape, a zip bomb in a member they need, and members they do not need."""
    import pytest

    from core.result import ResultFormatError, read_result, write_result
    from core.result.toy import toy_result

    reader = _addon_module("result_file")
    good = tmp_path / "toy.npz"
    write_result(good, toy_result(n_people=1, n_frames=5))
    both = [(read_result, ResultFormatError), (reader.read_result_file, reader.ResultFileError)]

    # Members nobody reads are never read: an unloadable one (pickled objects) and 200 MB of deflated zeros.
    extra = tmp_path / "extra.npz"
    _rewrite_members(good, extra, {"junk.npy": _npy(np.array([{"a": 1}], dtype=object)),
                                   "zeros.npy": _npy(np.zeros(200_000_000, np.uint8))}, compress=True)
    for read, _ in both:
        read(extra)

    huge = tmp_path / "huge.npz"
    _rewrite_members(good, huge, {"p0_bone_rotations.npy": _npy(header={
        "descr": "<f4", "fortran_order": False, "shape": (10**7, 10**7, 4)})})
    # A bomb the readers need: 10 M vertices of deflated zeros (120 MB from a file of 0.5 MB), consistent shapes.
    bomb = tmp_path / "bomb.npz"
    V = 10_000_000
    _rewrite_members(good, bomb, {"p0_rest_vertices.npy": _npy(np.zeros((V, 3), np.float32)),
                                  "p0_skin_indices.npy": _npy(np.zeros((V, 4), np.int32)),
                                  "p0_skin_weights.npy": _npy(np.zeros((V, 4), np.float32))}, compress=True)
    assert os.path.getsize(bomb) < 2 << 20
    for read, error in both:
        with pytest.raises(error, match="p0_bone_rotations") as err:
            read(huge)
        assert "(10000000, 10000000, 4)" in str(err.value)
        with pytest.raises(error, match="p0_rest_vertices.*declares .*allowed"):
            read(bomb)
