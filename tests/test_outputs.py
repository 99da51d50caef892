"""A run's outputs are all or nothing: checked before the work, written to temporary files, renamed into
place only when every one of them was written and checked; a full disk is a one-line user error.

Most cases run the command line in this process on one capture made once for the module (the capture
itself is replaced by that result, so each case costs only the writing); a full disk is a 64 KiB
tmpfs, which needs root (the cases skip otherwise).
"""
import errno
import hashlib
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from core.cli import main

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "sample_two_people.mp4"
EARLIER = b"an earlier result the user wants to keep"


def _sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _one_line(capsys, rc: int, code: int = 2) -> str:
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert rc == code and len(err) == 1 and err[0].startswith("doppel: error:"), (rc, err)
    return err[0]


def _leftovers(*folders) -> list[str]:
    return [p.name for d in folders for p in Path(d).iterdir() if p.name.startswith(".doppel-")]


@pytest.fixture(scope="module")
def capture_output(pose_models):
    """The real capture of the sample's first 8 frames (short fit), made once."""
    from core.config import CaptureConfig, FitConfig
    from core.pipeline import run_capture

    config = replace(CaptureConfig(), use_densepose=False, fit=replace(FitConfig(), iterations=30))
    return run_capture(str(SAMPLE), config, stop=8, pose_models=pose_models)


@pytest.fixture
def captured(monkeypatch, capture_output):
    """``python -m core capture`` in this process, its capture replaced by ``capture_output``."""
    monkeypatch.setattr("core.pipeline.run_capture", lambda *a, **k: capture_output)

    def run(*args):
        return main(["capture", str(SAMPLE), *map(str, args), "--progress", "none"])

    return run


@pytest.fixture
def full_disk(request, tmp_path):
    """A folder on a 64 KiB tmpfs, filled up (a file ``filler``), or ("small") on an empty 16 KiB one,
    where a preview's header fits and its frames do not."""
    if os.geteuid() != 0:
        pytest.skip("a full disk is a small tmpfs, and only root can mount one")
    d = tmp_path / "full"
    d.mkdir()
    size = "16k" if getattr(request, "param", "full") == "small" else "64k"
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {proc.stderr.strip()}")
    try:
        fd = os.open(d / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while getattr(request, "param", "full") == "full" and os.write(fd, b"\0" * 4096):
                pass
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
        yield d
    finally:
        subprocess.run(["umount", str(d)], capture_output=True)


@pytest.mark.parametrize("full_disk", ["full", "small"], indirect=True)
def test_a_preview_that_does_not_fit_fails_and_nothing_is_written(captured, full_disk, tmp_path, capsys):
    """Case 1: OpenCV's writer fails silently; a preview that does not reopen with its frames is refused."""
    out = tmp_path / "r.npz"
    line = _one_line(capsys, captured("-o", out, "--preview", full_disk / "p.mp4"))
    assert str(full_disk / "p.mp4") in line and "no space left" in line
    assert not out.exists() and not (full_disk / "p.mp4").exists()
    assert not _leftovers(tmp_path, full_disk)


@pytest.mark.parametrize("extra", ["--glb", "--bvh"])
def test_a_failed_export_keeps_the_earlier_result(extra, captured, full_disk, tmp_path, capsys):
    """Case 2: the result is renamed into place only after every export was written."""
    out = tmp_path / "r.npz"
    out.write_bytes(EARLIER)
    before = _sha(out)
    target = full_disk / "people.glb" if extra == "--glb" else full_disk
    line = _one_line(capsys, captured("-o", out, extra, target))
    assert "no space left" in line and str(full_disk) in line
    assert _sha(out) == before
    assert not _leftovers(tmp_path, full_disk) and sorted(p.name for p in full_disk.iterdir()) == ["filler"]


def test_a_full_disk_for_the_result_is_one_clean_line(full_disk, tmp_path):
    """Case 3 (a real run): exit 2, one line naming the path, no 'Exception ignored' noise after it."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "core", "capture", str(SAMPLE), "-o", str(full_disk / "r.npz"),
                           "--end", "6", "--iterations", "20", "--max-people", "1", "--no-densepose",
                           "--progress", "none"], capture_output=True, text=True, env=env, cwd=REPO, timeout=900)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    assert lines[-1] == f"doppel: error: cannot write {full_disk / 'r.npz'}: no space left on device", proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]


@pytest.mark.parametrize("args,needle", [
    (["-o", "{d}/r.npz", "--glb", "{d}/r.npz"], "--glb and -o name the same file"),
    (["-o", "{d}/r.npz", "--preview", "{d}/r.npz"], "--preview and -o name the same file"),
    (["-o", "{d}/r.npz", "--preview", "{video}"], "is the input file"),
    (["-o", "{d}/r.npz", "--glb", "{d}/people.gltf"], "--glb must name a .glb file"),
    (["-o", "{d}/r.npz", "--preview", "{d}/p.txt"], "--preview must name a .mp4 or .avi file"),
])
def test_outputs_are_checked_before_any_work(args, needle, tmp_path, monkeypatch, capsys):
    """Case 4 (and the extension checks of case 2): one line, exit 2, before the capture starts."""
    video = tmp_path / "clip.mp4"
    video.write_bytes(SAMPLE.read_bytes())
    (tmp_path / "r.npz").write_bytes(EARLIER)

    def no_work(*a, **k):
        raise AssertionError("the capture started before the outputs were checked")

    monkeypatch.setattr("core.pipeline.run_capture", no_work)
    rc = main(["capture", str(video), *[a.format(d=tmp_path, video=video) for a in args], "--progress", "none"])
    assert needle in _one_line(capsys, rc)
    assert (tmp_path / "r.npz").read_bytes() == EARLIER and video.read_bytes() == SAMPLE.read_bytes()


def test_outputs_follow_the_umask_and_replace_together(captured, tmp_path, capsys):
    """Case 9: new files get 0666 less the umask, as ordinary file creation gives them."""
    bvh = tmp_path / "bvh"
    bvh.mkdir()
    old = os.umask(0o022)
    try:
        rc = captured("-o", tmp_path / "r.npz", "--glb", tmp_path / "p.glb", "--preview", tmp_path / "p.mp4",
                      "--bvh", bvh)
        capsys.readouterr()
        os.umask(0o027)
        rc2 = captured("-o", tmp_path / "r2.npz")
    finally:
        os.umask(old)
    assert rc == rc2 == 0
    files = [tmp_path / "r.npz", tmp_path / "p.glb", tmp_path / "p.mp4", *bvh.glob("*.bvh")]
    assert len(files) == 5
    assert {f.name: oct(f.stat().st_mode & 0o777) for f in files} == {f.name: "0o644" for f in files}
    assert oct((tmp_path / "r2.npz").stat().st_mode & 0o777) == "0o640"
    assert not _leftovers(tmp_path, bvh)


def test_a_cancel_at_the_last_step_leaves_every_earlier_output(captured, tmp_path, monkeypatch, capsys):
    """A failure after some outputs were written (here: the preview) renames none of them."""
    out, glb = tmp_path / "r.npz", tmp_path / "p.glb"
    out.write_bytes(EARLIER)
    glb.write_bytes(EARLIER)

    def cancelled(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("core.export.preview.render_capture_preview", cancelled)
    rc = captured("-o", out, "--glb", glb, "--preview", tmp_path / "p.mp4")
    assert rc == 130 and "cancelled" in capsys.readouterr().err
    assert out.read_bytes() == EARLIER and glb.read_bytes() == EARLIER
    assert not (tmp_path / "p.mp4").exists() and not _leftovers(tmp_path)


@pytest.mark.parametrize("where", ["creating", "after the block"])
def test_a_ctrl_c_between_the_steps_of_an_atomic_write_leaves_no_temporary_file(tmp_path, monkeypatch, where):
    """A Ctrl+C that lands just after the temporary file is created (before its name is handed out), or
    just after it was written (before it is recorded for the rename), removes it; the old file stays."""
    import core.fileio as fileio

    out = tmp_path / "batch_report.json"
    out.write_bytes(EARLIER)
    if where == "creating":
        real_close = os.close

        def close_then_interrupt(fd):
            real_close(fd)
            raise KeyboardInterrupt

        monkeypatch.setattr(fileio.os, "close", close_then_interrupt)
    else:
        class Interrupting(list):
            def append(self, item):
                raise KeyboardInterrupt

        real_init = fileio.Outputs.__init__

        def init(self, *a, **k):
            real_init(self, *a, **k)
            self._staged = Interrupting()

        monkeypatch.setattr(fileio.Outputs, "__init__", init)
    with pytest.raises(KeyboardInterrupt):
        with fileio.atomic_path(out) as tmp, open(tmp, "w") as fh:
            fh.write("new")
    assert out.read_bytes() == EARLIER and not _leftovers(tmp_path)


def test_a_failed_rename_puts_the_renamed_outputs_back(tmp_path, monkeypatch):
    from core.errors import OutputPathError
    from core.fileio import Outputs

    a, b = tmp_path / "a.npz", tmp_path / "b.glb"
    a.write_bytes(b"old a")
    real_replace = os.replace

    def replace_but_b(src, dst):
        if str(dst) == str(b):
            raise OSError(errno.EACCES, "Permission denied")
        return real_replace(src, dst)

    with Outputs() as outputs:
        for path, data in ((a, b"new a"), (b, b"new b")):
            with outputs.staged(path) as tmp:
                Path(tmp).write_bytes(data)
        monkeypatch.setattr(os, "replace", replace_but_b)
        with pytest.raises(OutputPathError, match="cannot write .*b.glb: permission denied"):
            outputs.commit()
    assert a.read_bytes() == b"old a" and not b.exists() and not _leftovers(tmp_path)


def test_sigint_inherited_as_ignored_still_cancels(tmp_path):
    """A background job of a non-interactive shell starts with SIGINT ignored; Ctrl+C must still cancel."""
    out = tmp_path / "r.npz"
    out.write_bytes(EARLIER)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "core", "capture", str(SAMPLE), "-o", str(out), "--no-densepose",
                             "--progress", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=REPO, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        for line in proc.stdout:  # the work has started once progress is reported
            if '"landmarks"' in line:
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "doppel: cancelled; nothing was written"
    assert out.read_bytes() == EARLIER
