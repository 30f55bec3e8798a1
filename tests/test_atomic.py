"""Atomic result writes: readable permissions under the umask, and a crash mid-write leaves the old version
and no temporary file or folder."""

import os
import stat

import pytest

from jaxsim import atomic
from jaxsim.atomic import write_file, write_folder


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _hidden(folder) -> list[str]:
    return sorted(p for p in os.listdir(folder) if p.startswith("."))


def test_files_and_folders_follow_the_umask(tmp_path, umask_022):
    write_file(tmp_path / "a.json", b"{}")
    write_folder(tmp_path / "new" / "stock", {"x.csv": b"1\n", "y.csv": b"2\n"})
    write_folder(tmp_path / "new" / "stock", {"x.csv": b"3\n"}, exist_ok=True)
    assert _mode(tmp_path / "a.json") == 0o644
    assert _mode(tmp_path / "new") == 0o755 and _mode(tmp_path / "new" / "stock") == 0o755
    assert {_mode(tmp_path / "new" / "stock" / n) for n in ("x.csv", "y.csv")} == {0o644}
    os.umask(0o077)  # a private umask stays private
    write_file(tmp_path / "b.json", b"{}")
    write_folder(tmp_path / "private", {"x.csv": b"1\n"})
    assert _mode(tmp_path / "b.json") == 0o600 and _mode(tmp_path / "private") == 0o700


def test_contents_and_overwrite(tmp_path):
    write_file(tmp_path / "a.txt", b"old")
    write_file(tmp_path / "a.txt", b"new")
    assert (tmp_path / "a.txt").read_bytes() == b"new"
    folder = write_folder(tmp_path / "f", {"a": b"1", "b": b"2"})
    (folder / "notes.txt").write_text("mine")
    write_folder(folder, {"a": b"3"}, exist_ok=True)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == {"a": b"3", "b": b"2", "notes.txt": b"mine"}
    with pytest.raises(FileExistsError):
        write_folder(folder, {"a": b"4"})
    assert (folder / "a").read_bytes() == b"3"
    with pytest.raises(ValueError, match="plain file name"):
        write_folder(tmp_path / "g", {"../escape": b""})
    assert _hidden(tmp_path) == [] and _hidden(folder) == []


def test_a_failed_rename_keeps_the_old_file(tmp_path, monkeypatch):
    write_file(tmp_path / "a.txt", b"old")

    def crash(*args):
        raise OSError(5, "I/O error")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="I/O error"):
        write_file(tmp_path / "a.txt", b"new")
    assert (tmp_path / "a.txt").read_bytes() == b"old" and _hidden(tmp_path) == []


def test_a_failed_write_keeps_the_old_folder_and_leaves_nothing(tmp_path, monkeypatch):
    folder = write_folder(tmp_path / "run", {"records.csv": b"old r", "summary.csv": b"old s"})
    real_fsync = os.fsync
    calls = {"n": 0}

    def full_disk(fd):  # the second file's data does not fit
        calls["n"] += stat.S_ISREG(os.fstat(fd).st_mode)
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):  # in place: the first file is staged, not renamed
        write_folder(folder, {"records.csv": b"new r", "summary.csv": b"new s"}, exist_ok=True)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == {"records.csv": b"old r", "summary.csv": b"old s"}
    calls["n"] = 0
    with pytest.raises(OSError, match="No space left"):  # a new folder never appears
        write_folder(tmp_path / "other", {"records.csv": b"r", "summary.csv": b"s"})
    assert sorted(os.listdir(tmp_path)) == ["run"] and _hidden(folder) == []


def test_a_folder_that_appears_meanwhile_is_not_replaced(tmp_path, monkeypatch):
    real = atomic.write_file

    def racing(path, data):  # another writer creates the folder while this one writes
        (tmp_path / "stock").mkdir(exist_ok=True)
        (tmp_path / "stock" / "theirs.csv").write_bytes(b"theirs")
        return real(path, data)

    monkeypatch.setattr(atomic, "write_file", racing)
    with pytest.raises(OSError):
        write_folder(tmp_path / "stock", {"mine.csv": b"mine"})
    assert os.listdir(tmp_path / "stock") == ["theirs.csv"] and _hidden(tmp_path) == []
