"""The one atomic-write helper: files and folders appear whole or not at all, and every writer uses it."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from napari_sam.io.atomic import atomic_path, atomic_write_text, stale_temporaries, write_json_atomic


def test_file_and_folder_replace_the_target_whole(tmp_path):
    target = tmp_path / "sub" / "summary.json"
    write_json_atomic(target, {"b": 1, "a": [1, 2]})
    assert json.loads(target.read_text()) == {"a": [1, 2], "b": 1}
    atomic_write_text(target, "second")
    assert target.read_text() == "second"

    folder = tmp_path / "session"
    for version in ("1", "2"):
        with atomic_path(folder, folder=True) as tmp:
            assert tmp.is_dir() and tmp.parent == folder.parent and not folder.joinpath("v2").exists()
            (tmp / f"v{version}").write_text(version)
    assert sorted(p.name for p in folder.iterdir()) == ["v2"]  # the old folder went, not merged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["session", "sub"]


def test_an_error_leaves_the_old_target_and_no_temporary(tmp_path):
    target = tmp_path / "labels.tif"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old" and not stale_temporaries(target)
    folder = tmp_path / "annotations"
    with pytest.raises(KeyboardInterrupt), atomic_path(folder, folder=True) as tmp:
        (tmp / "objects.json").write_text("{")
        raise KeyboardInterrupt
    assert not folder.exists() and not stale_temporaries(folder)


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL")
def test_a_killed_writer_leaves_the_old_target(tmp_path):
    """A process killed in the middle of a large write: the target still holds the old content whole."""
    target = tmp_path / "big.bin"
    target.write_bytes(b"old")
    script = textwrap.dedent(
        f"""
        import sys, time
        from napari_sam.io.atomic import atomic_path
        with atomic_path({str(target)!r}) as tmp:
            with open(tmp, "wb") as fh:
                fh.write(b"x" * 1_000_000)
                fh.flush()
                print("writing", flush=True)
                time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert target.read_bytes() == b"old"
    stale = stale_temporaries(target)
    assert len(stale) == 1 and stale[0].stat().st_size == 1_000_000  # found, so a rerun can remove it


NOT_WRITES = {
    "io/atomic.py": "the helper itself",
    "embeddings/folder_lock.py": "moves a dead holder's lock file aside (a lock take-over, not a write)",
}


def test_no_other_module_renames_temporaries_itself():
    """One helper for temp + rename: no other source file calls os.replace / os.rename / mkstemp."""
    import napari_sam

    root = os.path.dirname(napari_sam.__file__)
    offenders = []
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            if not name.endswith(".py") or rel in NOT_WRITES:
                continue
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
            for needle in ("os.replace(", "os.rename(", ".rename(", 'mkdtemp(prefix=f".{'):
                if needle in text:
                    offenders.append(f"{os.path.relpath(path, root)}: {needle}")
    assert offenders == []
