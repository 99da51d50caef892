"""``python -m core batch``: statuses of good and bad clips, resume, --force, and a cancel mid-batch."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.batch import find_clips

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "sample_two_people.mp4"
END = ["--end", "5", "--iterations", "40"]  # short clips, short fits: the batch is under test


def _cmd(*args):
    return [sys.executable, "-m", "core", "batch", *map(str, args)]


def _run(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(_cmd(*args), capture_output=True, text=True, cwd=REPO, env=env, timeout=600)


def _cut(dst: Path, first: int, n: int) -> None:
    """Frames first..first+n of the sample as an MJPG .avi."""
    cap = cv2.VideoCapture(str(SAMPLE))
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.set(cv2.CAP_PROP_POS_FRAMES, first)
    frames = [cap.read()[1] for _ in range(n)]
    cap.release()
    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for f in frames:
        out.write(f)
    out.release()


def _report(out: Path) -> dict:
    report = json.loads((out / "batch_report.json").read_text())
    return {c["clip"]: c for c in report["clips"]}


def _leftovers(folder: Path) -> list:
    return [p for p in folder.rglob("*") if p.name.startswith(".doppel-")]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    (d / "sub").mkdir()
    _cut(d / "walk.avi", 0, 6)
    _cut(d / "sub" / "later.avi", 40, 6)
    data = SAMPLE.read_bytes()
    (d / "corrupt.mp4").write_bytes(data[: len(data) // 3])
    black = cv2.VideoWriter(str(d / "nobody.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 12.0, (160, 120))
    for _ in range(8):
        black.write(np.zeros((120, 160, 3), np.uint8))
    black.release()
    return d


@pytest.fixture(scope="module")
def first_run(clips, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    proc = _run(clips, "-o", out, *END, "--workers", "2", "--progress", "none")
    return proc, out


def test_batch_records_each_clip_and_fails_overall(first_run):
    proc, out = first_run
    assert proc.returncode == 2, proc.stderr  # failures, all of them the user's (bad clips)
    assert "Traceback" not in proc.stderr
    rows = _report(out)
    assert set(rows) == {"walk", "sub/later", "corrupt", "nobody"}
    for name in ("walk", "sub/later"):
        assert rows[name]["status"] == "ok" and rows[name]["people"] >= 1 and rows[name]["frames"] == 5
        assert Path(rows[name]["output"]).is_file()
    assert (out / "sub" / "later.npz").is_file()
    assert rows["corrupt"]["status"] == "failed" and rows["corrupt"]["exit_class"] == "user"
    assert "video" in rows["corrupt"]["error"] and "\n" not in rows["corrupt"]["error"]
    assert rows["nobody"]["status"] == "failed" and "no person" in rows["nobody"]["error"]
    assert not (out / "corrupt.npz").exists() and not (out / "nobody.npz").exists()
    assert not _leftovers(out)
    table = proc.stderr[proc.stderr.index("clip "):]
    assert "status" in table and "sub/later" in table and "no person" in table


def test_second_run_skips_finished_clips_and_force_redoes_them(first_run, clips, tmp_path):
    _, out = first_run
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")}
    proc = _run(clips, "-o", out, *END, "--progress", "none")
    rows = _report(out)
    assert proc.returncode == 2, proc.stderr
    assert rows["walk"]["status"] == rows["sub/later"]["status"] == "skipped"
    assert rows["walk"]["people"] >= 1 and rows["walk"]["frames"] == 5
    assert rows["corrupt"]["status"] == "failed"  # failures are tried again
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")} == before

    # A list naming one clip: the same result name, so the same result; --force captures it again.
    listing = tmp_path / "clips.txt"
    listing.write_text(f"# one clip\n{clips / 'walk.avi'}\n\n")
    proc = _run(listing, "-o", out, *END, "--progress", "none")
    assert proc.returncode == 0 and _report(out)["walk"]["status"] == "skipped", proc.stderr
    proc = _run(listing, "-o", out, *END, "--force", "--progress", "none")
    assert proc.returncode == 0 and _report(out)["walk"]["status"] == "ok", proc.stderr
    assert (out / "walk.npz").stat().st_mtime_ns != before[out / "walk.npz"]
    # Another configuration is another job: not skipped.
    proc = _run(listing, "-o", out, "--end", "4", "--progress", "none")
    assert proc.returncode == 0 and _report(out)["walk"]["status"] == "ok" and _report(out)["walk"]["frames"] == 4


def test_interrupted_batch_resumes_to_completion(clips, tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    args = [clips / "walk.avi", clips / "sub" / "later.avi", "-o", out, *END, "--workers", "1", "--progress", "json"]
    proc = subprocess.Popen(_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    try:
        for line in proc.stdout:
            event = json.loads(line)
            if event.get("stage") == "clip":
                assert event["status"] == "ok", event
                proc.send_signal(signal.SIGINT)  # the first clip is done, the second is running
                break
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert not _leftovers(out)
    rows = _report(out)
    assert sorted(r["status"] for r in rows.values()) == ["cancelled", "ok"]
    assert sorted(p.name for p in out.rglob("*.npz")) == ["walk.npz"]

    proc = subprocess.run(_cmd(*args[:-2], "--progress", "none"), capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = _report(out)
    assert rows["walk"]["status"] == "skipped" and rows["later"]["status"] == "ok"
    assert not _leftovers(out)


def test_clip_names_are_relative_and_made_unique(tmp_path):
    (tmp_path / "a" / "x").mkdir(parents=True)
    for rel in ("a/take.mp4", "a/take.avi", "a/x/take.mov", "a/notes.txt", "a/.hidden.mp4", "b.mp4"):
        (tmp_path / rel).write_bytes(b"")
    (tmp_path / "list.txt").write_text("a/x/take.mov\nb.mp4\nmissing.mp4\n")
    clips = find_clips([str(tmp_path / "a"), str(tmp_path / "list.txt"), str(tmp_path / "a" / "take.mp4")],
                       str(tmp_path / "out"))
    names = {os.path.relpath(c.path, tmp_path): c.name for c in clips}
    # each file once; the folder's names relative to it; a listed or loose file by its base name
    assert names == {"a/take.avi": "take", "a/take.mp4": "take-2", "a/x/take.mov": "x/take", "b.mp4": "b",
                     "missing.mp4": "missing"}
    assert {c.name: c.renamed_from for c in clips}["take-2"] == "take"


def test_bad_batch_arguments_are_one_line(tmp_path):
    for args in ([tmp_path / "nothing_here", "-o", tmp_path / "out"], [tmp_path, "-o", tmp_path / "out"],
                 [SAMPLE, "-o", tmp_path / "out", "--workers", "0"]):
        proc = _run(*args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("doppel: error:"), proc.stderr
