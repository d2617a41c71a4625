"""``intrain data fetch NAME``: download MNIST, Fashion-MNIST, CIFAR-10 or CIFAR-100 from where their
authors publish them, checked against the published MD5s, into the layout ``--data-dir`` reads.

A download goes to ``FILE.part`` first and continues from where it stopped (an HTTP range request)
when run again; a file is renamed into place only once its checksum matches. ``$INTRAIN_DATA_MIRROR``
replaces the published addresses with ``MIRROR/NAME/FILE`` (a local copy, a test server). No network:
one line saying so.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import DataError

MIRROR_ENV = "INTRAIN_DATA_MIRROR"
CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    """Where a dataset is published: the base address, its files with their MD5s, and the folder
    inside ``--data-dir`` they go to (archives are extracted there)."""

    base: str
    files: tuple[tuple[str, str], ...]
    folder: str
    extract: bool = False


_IDX = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz")
SOURCES = {
    # yann.lecun.com refuses downloads now; the mirror torchvision reads, same bytes (same MD5s)
    "mnist": Source("https://ossci-datasets.s3.amazonaws.com/mnist/", tuple(zip(_IDX, (
        "f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
        "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"))), "mnist"),
    "fashion-mnist": Source("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", tuple(zip(_IDX, (
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
        "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"))), "fashion-mnist"),
    "cifar10": Source("https://www.cs.toronto.edu/~kriz/",
                      (("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),), ".", extract=True),
    "cifar100": Source("https://www.cs.toronto.edu/~kriz/",
                       (("cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85"),), ".", extract=True),
}


def fetch_dataset(name: str, data_dir: str | Path, *, log: Callable[[str], None] = print) -> Path:
    """Download dataset ``name`` into ``data_dir`` (see the module docstring); returns the folder that
    ``--data-dir`` should then name (``data_dir`` itself). Files already there and intact are kept."""
    if name not in SOURCES:
        from ..validation import choice

        choice("dataset", name, tuple(SOURCES))
    source, root = SOURCES[name], Path(data_dir).expanduser()
    target = root / source.folder
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"data_dir: cannot create {target}: {exc.strerror or type(exc).__name__}") from None
    mirror = os.environ.get(MIRROR_ENV)
    for filename, md5 in source.files:
        url = f"{mirror.rstrip('/')}/{name}/{filename}" if mirror else source.base + filename
        path = target / filename
        if path.is_file() and _md5(path) == md5:
            log(f"{filename}: already there")
        else:
            download(url, path, md5, log=log)
        if source.extract:
            log(f"{filename}: extracting")
            _extract(path, target)
    return root


def download(url: str, path: Path, md5: str, *, log: Callable[[str], None] = print) -> None:
    """``url`` to ``path`` through ``path.part`` (continued where it stopped), checked against ``md5``."""
    part = path.with_name(path.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - fixed https/http URLs
            resumed = have and response.status == 206
            log(f"{path.name}: {'continuing at ' + str(have) + ' bytes' if resumed else 'downloading'} from {url}")
            with part.open("ab" if resumed else "wb") as handle:
                while chunk := response.read(CHUNK):
                    handle.write(chunk)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the part is complete already
            pass
        else:
            raise DataError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc.strerror or type(exc).__name__
        raise DataError(f"cannot download {url} ({reason}): offline? copy {path.name} into {path.parent} "
                        "by hand, or run this again later (it continues where it stopped)") from None
    got = _md5(part)
    if got != md5:
        part.unlink()
        raise DataError(f"{path.name}: checksum {got} does not match the published {md5}; the partial file "
                        "was removed, run this again")
    part.replace(path)


def _extract(archive_path: Path, target: Path) -> None:
    """Extract a tar archive's regular files and folders, refusing paths that leave ``target``."""
    with tarfile.open(archive_path) as archive:
        members = [m for m in archive.getmembers() if m.isfile() or m.isdir()]
        for member in members:
            if Path(member.name).is_absolute() or ".." in Path(member.name).parts:
                raise DataError(f"{archive_path.name}: refusing the archive member {member.name!r}")
        archive.extractall(target, members=members)  # noqa: S202 - members checked above


def _md5(path: Path) -> str:
    digest = hashlib.md5()  # noqa: S324 - the published checksums are MD5s
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
