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


def test_ray_gives_the_results_of_local_workers(first_run, clips, tmp_path):
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install .[ray])")
    from core.cli import main

    _, local = first_run
    out = tmp_path / "ray"
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
    try:
        code = main(["batch", str(clips / "walk.avi"), str(clips / "sub" / "later.avi"), str(clips / "nobody.avi"),
                     "-o", str(out), *END, "--ray", "--progress", "none"])
    finally:
        ray.shutdown()
        for s, h in handlers.items():
            signal.signal(s, h)
    assert code == 2
    rows = _report(out)
    assert {n: r["status"] for n, r in rows.items()} == {"walk": "ok", "later": "ok", "nobody": "failed"}
    for mine, theirs in (("walk.npz", "walk.npz"), ("later.npz", "sub/later.npz")):
        with np.load(out / mine) as a, np.load(local / theirs) as b:
            assert sorted(a.files) == sorted(b.files)
            for name in a.files:
                if a[name].dtype.kind == "f":
                    np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-5, err_msg=name)
                elif name != "meta_json":
                    np.testing.assert_array_equal(a[name], b[name], err_msg=name)
            meta_a, meta_b = json.loads(str(a["meta_json"])), json.loads(str(b["meta_json"]))
            assert meta_a["config"] == meta_b["config"] and meta_a["people"] == meta_b["people"]


def test_ray_missing_or_unreachable_paths_are_one_line(tmp_path):
    from core.batch import Clip, Job, check_shared_paths
    from core.errors import ConfigError

    # Without the ray package: what to install, in one line.
    fake = tmp_path / "noray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('ray is not installed here')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(fake.parent), str(REPO)]))
    proc = subprocess.run(_cmd(SAMPLE, "-o", tmp_path / "out", "--ray"), capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "pip install" in lines[0] and "ray" in lines[0], proc.stderr
    # A worker that cannot see the clips: refused before any work, naming a path.
    job = Job(clip=Clip(str(SAMPLE), "sample"), output=str(tmp_path / "sample.npz"), options=(), key="k")
    with pytest.raises(ConfigError, match="cannot reach"):
        check_shared_paths([job], str(tmp_path), lambda paths: [p for p in paths if p.endswith(".mp4")])
    check_shared_paths([job], str(tmp_path), lambda paths: [])


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
    _cut(tmp_path / "third.avi", 20, 6)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    inputs = [clips / "walk.avi", clips / "sub" / "later.avi", tmp_path / "third.avi"]
    args = [*inputs, "-o", out, *END, "--workers", "2"]
    proc = subprocess.Popen(_cmd(*args, "--progress", "json"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO, env=env)
    try:
        for line in proc.stdout:
            event = json.loads(line)
            if event.get("stage") == "clip":
                assert event["status"] == "ok", event
                proc.send_signal(signal.SIGINT)  # one clip is done; the third has not finished
                break
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert not _leftovers(out)
    rows = _report(out)
    done = {n for n, r in rows.items() if r["status"] == "ok"}
    assert done and set(rows) - done and {r["status"] for r in rows.values()} <= {"ok", "cancelled"}
    assert {p.stem for p in out.rglob("*.npz")} == done  # cancelled clips left nothing

    proc = subprocess.run(_cmd(*args, "--progress", "none"), capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = _report(out)
    assert {n for n, r in rows.items() if r["status"] == "skipped"} == done
    assert {n for n, r in rows.items() if r["status"] == "ok"} == set(rows) - done
    assert not _leftovers(out) and len(list(out.rglob("*.npz"))) == 3


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
