"""Damaged or hostile model files are refused with one line that names the file, never an internal error.

- The shipped BlazePose graphs are checked against weights/MANIFEST.json before loading: any flipped
  byte is found (a fuzz over copies of each file).
- Past that check (a file the manifest does not list), the reader, the graph builder and a first run on
  zeros turn every structural fault into the same kind of message (flips that broke the old reader).
- Pickles (SMPL, DensePose) and .npz model files declaring huge sizes are refused before allocating.
"""
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.errors import WeightsFormatError
from core.tflite import load_tflite_graph

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "weights"
SAMPLE = REPO / "samples" / "sample_two_people.mp4"
SHAPES = {  # input and outputs of each graph, without the batch (what core.detect / core.observe load them with)
    "pose_detection.tflite": ((224, 224, 3), [(2254, 12), (2254, 1)]),
    "pose_landmark_full.tflite": ((256, 256, 3), [(195,), (1,), (256, 256, 1), (64, 64, 39), (117,)]),
    "hand_landmark_full.tflite": ((224, 224, 3), [(63,), (1,), (1,), (63,)]),
    "hand_recrop.tflite": ((256, 256, 3), [(1, 1, 4)]),
}
# (file, byte, bit): single-bit flips that the reader used to pass on to an internal error
OLD_FAULTS = [
    ("pose_landmark_full.tflite", 6347589, 0),  # IndexError: list index out of range
    ("pose_landmark_full.tflite", 6426905, 7),  # ValueError: cannot reshape array of size 576 into (1,32771,3,64)
    ("pose_landmark_full.tflite", 6362339, 7),  # RuntimeError: non-positive stride is not supported
    ("pose_landmark_full.tflite", 6353552, 0),  # TypeError: add(): argument 'other' must be Tensor, not NoneType
    ("pose_detection.tflite", 2871605, 3),  # IndexError: index 2118 is out of bounds (a sparse constant)
]


def _flipped(name: str, pos: int, bit: int) -> bytes:
    b = bytearray((WEIGHTS / name).read_bytes())
    b[pos] ^= 1 << bit
    return bytes(b)


def _names_the_file(msg: str, path) -> None:
    assert "\n" not in msg and str(path) in msg and "fetch_mediapipe_models.py" in msg, msg


def test_the_shipped_models_match_the_manifest():
    from core.model_files import verify_shipped

    for name in SHAPES:
        assert verify_shipped(WEIGHTS / name) is True


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_any_flipped_byte_in_a_shipped_model_is_found(name, tmp_path):
    """Fuzz: 24 random single-byte changes anywhere in a copy; each is one WeightsFormatError naming the copy."""
    data = (WEIGHTS / name).read_bytes()
    rng = np.random.default_rng(7)
    for k in range(24):
        folder = tmp_path / str(k)
        folder.mkdir()
        b = bytearray(data)
        pos = int(rng.integers(len(b)))
        b[pos] ^= int(rng.integers(1, 256))
        (folder / name).write_bytes(bytes(b))
        with pytest.raises(WeightsFormatError) as err:
            load_tflite_graph(folder / name)
        _names_the_file(str(err.value), folder / name)


@pytest.mark.parametrize("name,pos,bit", OLD_FAULTS)
def test_structural_faults_past_the_manifest_are_one_line(name, pos, bit, tmp_path):
    """The reader's own checks, for a file the manifest cannot vouch for."""
    from core.tflite import graph_from_bytes

    path = tmp_path / name
    with pytest.raises(WeightsFormatError) as err:
        graph_from_bytes(_flipped(name, pos, bit), path, SHAPES[name])
    _names_the_file(str(err.value), path)


def test_random_structural_flips_load_or_are_one_line():
    """Fuzz of the flatbuffer's structure (not the weight data) with the manifest check left out: each
    flip gives a graph that runs with the right shapes or one WeightsFormatError, never anything else."""
    import struct

    from core.tflite import graph_from_bytes
    from core.tflite.reader import _Table

    rng = np.random.default_rng(11)
    outcomes = []
    for name in sorted(SHAPES):
        data = (WEIGHTS / name).read_bytes()
        buf = memoryview(data)
        root = _Table(buf, struct.unpack_from("<I", buf, 0)[0])
        weights = np.zeros(len(data), bool)
        for b in root.tables(4):
            p = b._deref(0)
            if p:
                weights[p + 4:p + 4 + struct.unpack_from("<I", buf, p)[0]] = True
        structure = np.flatnonzero(~weights)
        for _ in range(6):
            try:
                graph_from_bytes(_flipped(name, int(rng.choice(structure)), int(rng.integers(8))), name, SHAPES[name])
                outcomes.append("loads")
            except WeightsFormatError as err:
                _names_the_file(str(err), name)
                outcomes.append("refused")
    assert len(outcomes) == 6 * len(SHAPES)


@pytest.mark.parametrize("name", sorted({n for n, _, _ in OLD_FAULTS} | {"hand_landmark_full.tflite"}))
def test_a_capture_with_a_damaged_model_is_one_line_naming_it(name, tmp_path):
    """Case 5 end to end: DOPPEL_WEIGHTS points at a copy of weights/ with one flipped bit."""
    for other in (*SHAPES, "pose_prior_gmm.npz"):
        (tmp_path / other).write_bytes((WEIGHTS / other).read_bytes())
    pos, bit = next(((p, b) for n, p, b in OLD_FAULTS if n == name), (len((WEIGHTS / name).read_bytes()) // 2, 0))
    (tmp_path / name).write_bytes(_flipped(name, pos, bit))
    env = dict(os.environ, PYTHONPATH=str(REPO), DOPPEL_WEIGHTS=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "core", "capture", str(SAMPLE), "-o", str(tmp_path / "r.npz"),
                           "--end", "6", "--no-densepose", "--progress", "none"], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=600)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("doppel: error: model file"), proc.stderr
    _names_the_file(lines[0], tmp_path / name)
    assert not (tmp_path / "r.npz").exists()


def test_a_capture_without_the_learned_pose_prior_stops_at_once_saying_how_to_restore_it(tmp_path):
    """The fit's pose prior ships in weights/; without it a capture stops before any video work, in one
    line that names the file and how to get it back, and writes nothing."""
    for name in SHAPES:
        (tmp_path / name).write_bytes((WEIGHTS / name).read_bytes())
    env = dict(os.environ, PYTHONPATH=str(REPO), DOPPEL_WEIGHTS=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "core", "capture", str(SAMPLE), "-o", str(tmp_path / "r.npz"),
                           "--end", "6", "--no-densepose", "--progress", "json"], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=600)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "pose_prior_gmm.npz is missing" in lines[0] and "git checkout -- weights/pose_prior_gmm.npz" in lines[0]
    assert '"landmarks"' not in proc.stdout  # stopped before reading the video
    assert not (tmp_path / "r.npz").exists()


# ---------------------------------------------------------------- pickles and .npz model files

class _HugeArray:
    """Pickles as numpy's own array reconstruction, declaring 400 TB."""

    def __reduce__(self):
        from core.safe_pickle import numpy_multiarray

        return numpy_multiarray()._reconstruct, (np.ndarray, (20_000_000, 20_000_000), b"b")


def test_an_smpl_pickle_declaring_a_huge_array_is_refused(tmp_path):
    """Case 6: no allocation, one line naming the file."""
    from core.body import load_body_model

    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps({"v_template": _HugeArray(), "f": np.zeros((1, 3), np.int64)}, protocol=2))
    with pytest.raises(WeightsFormatError, match="SMPL_NEUTRAL.pkl.*declared") as err:
        load_body_model("smpl", weights_dir=tmp_path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("data,needle", [
    (b"\x80\x04\x8e" + (1 << 40).to_bytes(8, "little") + b"abc.", "bytes8"),  # BINBYTES8 of 1 TB
    (b"\x80\x02}r" + (2**32 - 1).to_bytes(4, "little") + b".", "memo slot"),  # LONG_BINPUT into slot 4e9
    (b"\x80\x04\x95" + (1 << 40).to_bytes(8, "little") + b"}.", "frame"),  # FRAME of 1 TB
])
def test_declared_pickle_lengths_must_fit_in_the_file(data, needle, tmp_path):
    from core.body.safe_pickle import load_smpl_pickle
    from core.observe.densepose.weights import read_checkpoint

    path = tmp_path / "model.pkl"
    path.write_bytes(data)
    with pytest.raises(WeightsFormatError, match=needle) as err:
        load_smpl_pickle(path)
    assert str(path) in str(err.value)
    with pytest.raises(WeightsFormatError, match=needle) as err:
        read_checkpoint(path)
    assert path.name in str(err.value)


def test_a_densepose_checkpoint_declaring_a_huge_array_is_refused(tmp_path):
    from core.observe.densepose.weights import read_checkpoint

    path = tmp_path / "model_final.pkl"
    path.write_bytes(pickle.dumps({"model": {"w": _HugeArray()}}, protocol=4))
    with pytest.raises(WeightsFormatError, match="model_final.pkl.*declared"):
        read_checkpoint(path)


def test_an_smpl_npz_with_a_huge_declared_member_is_refused(tmp_path):
    import io
    import zipfile

    from core.body import load_body_model

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (10**7, 10**7, 3)})
    with zipfile.ZipFile(tmp_path / "SMPL_NEUTRAL.npz", "w") as zf:
        zf.writestr("v_template.npy", header.getvalue() + b"\0" * 64)
    with pytest.raises(WeightsFormatError, match="SMPL_NEUTRAL.npz") as err:
        load_body_model("smpl", weights_dir=tmp_path)
    assert "declares" in str(err.value)


def test_the_weights_script_knows_the_hand_models(tmp_path):
    """weights/fetch_mediapipe_models.py copies the hand graphs out of mediapipe 0.10.21 with the manifest's
    sha256, and its check names a missing one."""
    import hashlib
    import importlib.util

    spec = importlib.util.spec_from_file_location("fetch_mediapipe_models", WEIGHTS / "fetch_mediapipe_models.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    entries = [e for e in script._load_manifest() if e["file"].startswith("hand_")]
    assert {e["file"] for e in entries} == {"hand_landmark_full.tflite", "hand_recrop.tflite"}
    for e in entries:
        (tmp_path / e["file"]).write_bytes((WEIGHTS / e["file"]).read_bytes())
    assert script.check(entries, tmp_path) == []
    (tmp_path / "hand_recrop.tflite").unlink()
    assert script.check(entries, tmp_path) == ["hand_recrop.tflite is missing"]
    pytest.importorskip("mediapipe", reason="the copy is made from an installed mediapipe==0.10.21")
    for name, blob in script._read_source(entries, None).items():
        assert hashlib.sha256(blob).hexdigest() == next(e["sha256"] for e in entries if e["file"] == name)
