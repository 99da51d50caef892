"""Bad input gets a one-line error, exit code 2, and nothing is written or overwritten."""
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "sample_two_people.mp4"
COMMANDS = ["landmarks", "capture"]


def _run(*args, cwd=REPO):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "core", *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)


def _one_line_error(proc):
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("doppel: error:"), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "notes.mp4").write_text("this is not a video\n")
    (d / "empty.mp4").write_bytes(b"")
    # Truncated: the first third of a real clip (the index at the end is gone or the stream stops early).
    data = SAMPLE.read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 3])
    # A video with nobody in it: 12 frames of a slowly shifting grey gradient.
    w = cv2.VideoWriter(str(d / "nobody.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 12.0, (160, 120))
    for k in range(12):
        img = np.tile(np.linspace(40, 200, 160, dtype=np.uint8)[None, :, None], (120, 1, 3))
        w.write(np.roll(img, k, axis=1))
    w.release()
    # Zero frames: a container opened and closed without a frame.
    w = cv2.VideoWriter(str(d / "zero.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 12.0, (160, 120))
    w.release()
    return d


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("name,needle", [
    ("missing.mp4", "not found"),
    ("notes.mp4", "video"),
    ("empty.mp4", "empty"),
    ("truncated.mp4", "video"),
    ("zero.avi", "video"),
    ("nobody.avi", "no person"),
])
def test_bad_video_is_one_line_exit_2_and_writes_nothing(command, name, needle, bad_inputs, tmp_path):
    out = tmp_path / "out.npz"
    proc = _run(command, bad_inputs / name, "-o", out, "--progress", "none")
    line = _one_line_error(proc)
    assert needle in line.lower(), line
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".doppel-")], "temporary files left behind"


@pytest.mark.parametrize("command", COMMANDS)
def test_unwritable_output_fails_before_any_work(command, tmp_path):
    proc = _run(command, SAMPLE, "-o", tmp_path / "no" / "such" / "dir" / "out.npz", "--progress", "none")
    assert "output folder does not exist" in _one_line_error(proc)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):  # running as root: permissions do not bind
            pytest.skip("cannot make a read-only folder as root")
        proc = _run(command, SAMPLE, "-o", ro / "out.npz", "--progress", "none")
        assert "not writable" in _one_line_error(proc)
    finally:
        ro.chmod(0o700)


def test_failed_run_keeps_an_earlier_result(bad_inputs, tmp_path):
    out = tmp_path / "result.npz"
    out.write_bytes(b"earlier result")
    proc = _run("capture", bad_inputs / "nobody.avi", "-o", out, "--progress", "none")
    _one_line_error(proc)
    assert out.read_bytes() == b"earlier result"


def test_bad_options_are_user_errors(tmp_path):
    proc = _run("capture", SAMPLE, "-o", tmp_path / "r.npz", "--max-people", "0", "--progress", "none")
    assert "max-people" in _one_line_error(proc)
    proc = _run("capture", SAMPLE, "-o", tmp_path / "r.txt", "--progress", "none")
    assert ".npz" in _one_line_error(proc)
    proc = _run("landmarks", SAMPLE, "-o", tmp_path / "r.npz", "--device", "cuda:7", "--progress", "none")
    if proc.returncode != 0:
        assert "cuda" in _one_line_error(proc).lower()


@pytest.mark.parametrize("argv", [
    ["capture", SAMPLE, "-o", "{d}/r.npz", "--smoothing", "nan"],
    ["capture", SAMPLE, "-o", "{d}/r.npz", "--focal-px", "nan"],
    ["capture", SAMPLE, "-o", "{d}/r.npz", "--fov", "inf"],
    ["capture", SAMPLE, "-o", "{d}/r.npz", "--camera-height", "nan"],
    ["landmarks", SAMPLE, "-o", "{d}/r.npz", "--reacquire", "nan"],
    ["densepose", SAMPLE, "-o", "{d}/r.npz", "--score-thresh", "inf"],
])
def test_non_finite_numbers_are_refused_while_parsing(argv, tmp_path, capsys):
    """Case 7: one line naming the option, exit 2, before anything is loaded."""
    from core.cli import main

    option, value = argv[-2:]
    rc = main([str(a).format(d=tmp_path) for a in argv])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith("doppel: error: argument") and option in err[0] and f"finite number, got '{value}'" in err[0]
    assert not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def seen_in_two_frames(tmp_path_factory):
    """8 frames: the sample's first 2 (two people), then 6 of plain grey."""
    path = tmp_path_factory.mktemp("short") / "seen2.avi"
    cap = cv2.VideoCapture(str(SAMPLE))
    frames = [cap.read()[1] for _ in range(2)]
    cap.release()
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (w, h))
    for f in frames + [np.full_like(frames[0], 90)] * 6:
        writer.write(f)
    writer.release()
    return path


@pytest.mark.parametrize("command", COMMANDS)
def test_short_clips_say_what_a_capture_needs(command, seen_in_two_frames, tmp_path, capsys):
    """Case 8: not "no person was found", but how many frames the people were seen in and how many are needed."""
    from core.cli import main

    rc = main([command, str(SAMPLE), "-o", str(tmp_path / "r.npz"), "--end", "2", "--progress", "none"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err == (f"doppel: error: frames 0 to 1 of {SAMPLE} are 2 frame(s); "
                               "a capture needs at least 3 frames with the person in them")
    rc = main([command, str(seen_in_two_frames), "-o", str(tmp_path / "r.npz"), "--progress", "none"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1] == (f"doppel: error: a person was seen in only 2 of the 8 frames of {seen_in_two_frames}; "
                                   "a capture needs at least 4 frames with the person in them"), err
    assert not (tmp_path / "r.npz").exists()


def test_render_check_reports_a_bad_result_in_one_line(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a result")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "render_check.py"), str(bad), "-o",
                           str(tmp_path / "x.png")], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip() == f"render_check: error: Not a Doppel result file (File is not a zip file): {bad}"
