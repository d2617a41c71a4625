"""``intrain data fetch``: published files, checked, resumable, one line when offline. Served by a local
HTTP server on 127.0.0.1 (with range requests) from the byte-exact copies in ../shared/data, or from a
small archive in CIFAR's exact layout."""

from __future__ import annotations

import hashlib
import http.server
import io
import pickle
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from intrain.cli import main
from intrain.data import fetch
from intrain.data.datasets import load_dataset

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files, honouring ``Range: bytes=N-`` (206) as the published servers do."""

    requests: list[str] = []

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        type(self).requests.append(self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data, start = path.read_bytes(), 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A server on 127.0.0.1 for the folder it returns; INTRAIN_DATA_MIRROR points at it."""
    root = tmp_path / "served"
    root.mkdir()
    RangeHandler.requests = []
    handler = lambda *a, **k: RangeHandler(*a, directory=str(root), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(fetch.MIRROR_ENV, f"http://127.0.0.1:{httpd.server_address[1]}")
    yield root
    httpd.shutdown()


@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason="needs the byte-exact MNIST copies in ../shared/data")
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_fetch_the_published_files_resumes_and_loads(server, tmp_path, capsys, name):
    (server / name).symlink_to(SHARED / name)
    data = tmp_path / "data"
    # an interrupted earlier download: the first half of one file
    first = fetch.SOURCES[name].files[0][0]
    (data / name).mkdir(parents=True)
    (data / name / f"{first}.part").write_bytes((SHARED / name / first).read_bytes()[:1000])
    assert main(["data", "fetch", name, "--data-dir", str(data)]) == 0
    assert "continuing at 1000 bytes" in capsys.readouterr().out and "bytes=1000-" in RangeHandler.requests
    for filename, _ in fetch.SOURCES[name].files:
        assert (data / name / filename).read_bytes() == (SHARED / name / filename).read_bytes()
    assert not list((data / name).glob("*.part"))
    assert load_dataset(name, data, subset=100).notes == ()  # the published files, recognised
    assert main(["data", "fetch", name, "--data-dir", str(data)]) == 0
    assert capsys.readouterr().out.count("already there") == 4


def test_a_wrong_checksum_is_refused_and_the_part_removed(server, tmp_path, capsys, monkeypatch):
    (server / "mnist").mkdir()
    for filename, _ in fetch.SOURCES["mnist"].files:
        (server / "mnist" / filename).write_bytes(b"not mnist")
    assert main(["data", "fetch", "mnist", "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not match the published f68b3c2d" in err
    assert not list((tmp_path / "data" / "mnist").iterdir())


def test_cifar_archives_are_extracted_where_train_reads_them(server, tmp_path, monkeypatch):
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for member in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
            batch = pickle.dumps({b"data": np.zeros((10, 3072), np.uint8), b"labels": list(range(10))})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{member}")
            info.size = len(batch)
            tar.addfile(info, io.BytesIO(batch))
    (server / "cifar10").mkdir()
    (server / "cifar10" / "cifar-10-python.tar.gz").write_bytes(archive.getvalue())
    source = fetch.SOURCES["cifar10"]
    md5 = hashlib.md5(archive.getvalue()).hexdigest()
    monkeypatch.setitem(fetch.SOURCES, "cifar10", type(source)(source.base, (("cifar-10-python.tar.gz", md5),),
                                                              source.folder, source.extract))
    assert main(["data", "fetch", "cifar10", "--data-dir", str(tmp_path / "data"), ]) == 0
    assert load_dataset("cifar10", tmp_path / "data").train_images.shape == (50, 3, 32, 32)


def test_offline_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(fetch.MIRROR_ENV, "http://127.0.0.1:9")  # the discard port: nothing listens
    assert main(["data", "fetch", "fashion-mnist", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "offline?" in err and "Traceback" not in err
    assert main(["data", "fetch", "imagenet", "--data-dir", str(tmp_path)]) == 2
    assert "choose one of: mnist, fashion-mnist, cifar10, cifar100" in capsys.readouterr().err
