"""Corpora are found in $ZOO_DATA_DIR or the cache, downloaded atomically, and refused with a clear fix."""

import hashlib

import pytest

from datamodules import sources
from datamodules.sources import CorpusError, RemoteFile, fetch
from datamodules.text_corpus import load_text


def remote_for(path, sha256=None) -> RemoteFile:
    data = path.read_bytes()
    return RemoteFile("toy", "input.txt", path.as_uri(), sha256 or hashlib.sha256(data).hexdigest())


def test_builtin_found_in_data_dir_is_used_in_place_and_nothing_is_written(shared_data, monkeypatch):
    monkeypatch.setenv("ZOO_DATA_DIR", str(shared_data))
    before = sorted(p.name for p in (shared_data / "tinyshakespeare").iterdir())
    path = fetch(sources.BUILTIN_FILES["tinyshakespeare"])
    assert path == shared_data / "tinyshakespeare" / "input.txt"
    assert sorted(p.name for p in (shared_data / "tinyshakespeare").iterdir()) == before
    text = load_text("tinyshakespeare")
    assert len(text) == 1_115_394 and text.startswith("First Citizen:")


def test_download_goes_to_cache_once_and_is_reused(tmp_path, monkeypatch):
    upstream = tmp_path / "upstream.txt"
    upstream.write_text("to be or not to be\n")
    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    remote = remote_for(upstream)
    first = fetch(remote)
    assert first == sources.cache_dir() / "toy" / "input.txt"
    assert first.read_text() == "to be or not to be\n"
    upstream.unlink()  # a second call must not need the network (or the upstream) any more
    assert fetch(remote) == first


def test_hash_mismatch_raises_and_leaves_no_file(tmp_path, monkeypatch):
    upstream = tmp_path / "upstream.txt"
    upstream.write_text("tampered\n")
    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    with pytest.raises(CorpusError, match="sha256 mismatch"):
        fetch(remote_for(upstream, sha256="0" * 64))
    folder = sources.cache_dir() / "toy"
    assert not folder.exists() or list(folder.iterdir()) == []


def test_missing_builtin_says_where_it_looked_and_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "empty"))
    remote = RemoteFile("tinyshakespeare", "input.txt", (tmp_path / "nowhere.txt").as_uri(), "0" * 64)
    with pytest.raises(CorpusError) as error:
        fetch(remote)
    message = str(error.value)
    assert str(tmp_path / "empty" / "tinyshakespeare" / "input.txt") in message
    assert "ZOO_DATA_DIR" in message and "Fix" in message


def test_local_file_url_source_with_checksum(tmp_path):
    upstream = tmp_path / "poem.txt"
    upstream.write_text("Shall I compare thee\n")
    digest = hashlib.sha256(upstream.read_bytes()).hexdigest()
    assert load_text(upstream.as_uri(), sha256=digest) == "Shall I compare thee\n"
    assert load_text(str(upstream)) == "Shall I compare thee\n"


def test_unknown_source_and_empty_file_are_refused(tmp_path):
    with pytest.raises(CorpusError, match="neither a file nor a built-in"):
        load_text(str(tmp_path / "missing.txt"))
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(CorpusError, match="is empty"):
        load_text(str(empty))


def test_offline_shakespeare_ships_with_the_package():
    text = load_text("shakespeare")
    assert len(text) > 4_000_000
    assert "ROMEO:\n" in text and "To be, or not to be" in text
    assert "**" not in text and "#" not in text  # Markdown is gone
