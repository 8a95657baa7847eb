"""Files to and from a stage container through the Docker API, for engines that do not share
this host's filesystem (remote engines over ssh:// or tcp://, contexts, other sockets).

Large inputs (ONNX, calibration arrays, HARs of earlier stages) go once per engine into a
content-addressed volume, named by their sha256; a stage's small files and its outputs travel
as tar archives (`put_archive` / `get_archive`). The worker re-hashes every input before use
and reports its outputs' sha256, which the host checks after the download.
"""

from __future__ import annotations

import io
import logging
import shutil
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from hailoc.cache import Damage, StageCache
from hailoc.owned_files import sha256_file

log = logging.getLogger(__name__)

BLOB_VOLUME = "hailoc-blobs"
_HELPER_DIR = "/blobs"


@dataclass
class BlobStore:
    """The engine's volume of content-addressed inputs: a blob is sent once per engine."""

    client: Any
    image: str  # any image present on the engine; its container is created, never started
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Blobs this process has found or put there: later stages need no round trip for them.
    _present: set[str] = field(default_factory=set)

    def ensure(self, blobs: dict[str, Path]) -> None:
        """Send the blobs (name -> host file) the volume lacks or holds damaged."""
        from docker.types import Mount

        with self._lock:  # two builds needing one new ONNX send it once
            if self._present.issuperset(blobs):
                return
            self.client.volumes.create(BLOB_VOLUME, labels={"org.hailoc": "blobs"})
            helper = self.client.containers.create(
                self.image,
                entrypoint=["/bin/true"],
                command=[],
                user="0:0",
                network_disabled=True,
                labels={"org.hailoc": "blobs"},
                mounts=[Mount(_HELPER_DIR, BLOB_VOLUME, type="volume")],
            )
            try:
                for name, path in sorted(blobs.items()):
                    size = path.stat().st_size
                    # A partial upload leaves a short file: the size says so. Same-size damage
                    # is the worker's sha256 check's to find.
                    if name not in self._present and self._size(helper.id, name) != size:
                        log.info("sending %s (%.1f MB) to the engine", name, size / 2**20)
                        with _tar_file(name, path) as archive:
                            if not self.client.api.put_archive(helper.id, _HELPER_DIR, archive):
                                raise OSError(f"the engine refused {name}")
                    self._present.add(name)
            finally:
                helper.remove(force=True)

    def _size(self, container_id: str, name: str) -> int | None:
        """The blob's size on the engine (a HEAD request: nothing is downloaded)."""
        api = self.client.api
        response = api.head(
            api._url("/containers/{0}/archive", container_id),
            params={"path": f"{_HELPER_DIR}/{name}"},
        )
        if response.status_code != 200:
            return None
        import docker.utils

        stat = docker.utils.decode_json_header(
            response.headers.get("X-Docker-Container-Path-Stat", "")
        )
        return int(stat.get("size", -1)) if isinstance(stat, dict) else None


@contextmanager
def _tar_file(name: str, path: Path) -> Iterator[IO[bytes]]:
    """A one-member tar of a host file in a temporary file (streamed, not held in memory)."""
    with tempfile.TemporaryFile() as fh:
        with tarfile.open(fileobj=fh, mode="w") as tar:
            info = tar.gettarinfo(str(path), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o444
            with path.open("rb") as src:
                tar.addfile(info, src)
        fh.seek(0)
        yield fh


def stage_archive(work: str, files: dict[str, bytes], links: dict[str, str], uid: int) -> bytes:
    """A tar (extracted at /) holding the stage's work folder, owned by the container user,
    with its files, and symlinks (container path -> blob in the mounted volume)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        made: set[str] = set()

        def add_dir(path: str, owner: int) -> None:
            if path in made:
                return
            made.add(path)
            info = tarfile.TarInfo(path.lstrip("/"))
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            info.uid = info.gid = owner
            tar.addfile(info)

        add_dir(work, uid)
        for name, data in files.items():
            info = tarfile.TarInfo(f"{work.lstrip('/')}/{name}")
            info.size = len(data)
            info.mode = 0o644
            info.uid = info.gid = uid
            tar.addfile(info, io.BytesIO(data))
        for path, target in sorted(links.items()):
            add_dir(str(PurePosixPath(path).parent), 0)
            info = tarfile.TarInfo(path.lstrip("/"))
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buffer.getvalue()


def download_dir(client: Any, container_id: str, path: str, into: Path) -> list[Path]:
    """Copy a folder out of a (stopped) container into `into`/<its name>; the regular files
    written. Only plain relative names are accepted: an archive cannot write elsewhere."""
    from docker.errors import NotFound

    try:
        stream, _ = client.api.get_archive(container_id, path)
    except NotFound:
        return []
    written: list[Path] = []
    with tempfile.TemporaryFile() as fh:
        for chunk in stream:
            fh.write(chunk)
        fh.seek(0)
        with tarfile.open(fileobj=fh, mode="r") as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if not member.isfile() or not parts or ".." in parts or parts[0] == "/":
                    continue
                target = into.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:
                    continue
                with target.open("wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
                written.append(target)
    return written


WS = "/local/workspace"
INPUTS = f"{WS}/inputs"  # content-addressed blobs: ONNX bytes, calibration array
PREVIOUS = f"{WS}/in"  # the previous stage's cache entry


class HostBlobs:
    """This host's content-addressed blobs (`.hailoc/cache/blobs/<sha256>.<ext>`) and the
    hashes of every file a stage reads: blobs and cache entries never change once written,
    so each file is hashed once per invocation."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self.root = cache_dir / "blobs"
        self._sha256: dict[Path, str] = {}
        self._lock = threading.Lock()

    def blob(
        self,
        name: str,
        sha256: str,
        data: Callable[[], bytes],
        on_damage: Callable[[Damage], None],
    ) -> str:
        """The blob of `sha256` (its file name is that hash): checked once per invocation,
        stored from `data()` when missing, and moved aside and stored again when its bytes
        do not hash to its name. `data` runs only then (reading a large calibration set
        costs seconds)."""
        path = self.root / name
        with self._lock:
            if self._sha256.get(path) != sha256:
                StageCache(self.cache_dir, on_damage).blob(name, sha256, data)
                self._sha256[path] = sha256
        return name

    def inputs(
        self, job_file: Mapping[str, object], previous: Path | None
    ) -> dict[str, tuple[Path, str]]:
        """The job's input files by container path, with the host file and its sha256."""
        inputs: dict[str, tuple[Path, str]] = {}
        for value in job_file.values():
            if not isinstance(value, str):
                continue
            if value.startswith(f"{INPUTS}/"):
                host = self.root / value.removeprefix(f"{INPUTS}/")
            elif value.startswith(f"{PREVIOUS}/") and previous is not None:
                host = previous / value.removeprefix(f"{PREVIOUS}/")
            else:
                continue
            with self._lock:
                if host not in self._sha256:
                    self._sha256[host] = sha256_file(host)
                inputs[value] = (host, self._sha256[host])
        return inputs

    def remember(self, folder: Path, hashes: Mapping[str, str]) -> None:
        """Hashes of files just checked in `folder` (a cache entry): the next stage that
        reads one (a HAR of hundreds of MB) takes its hash from here instead of reading it."""
        with self._lock:
            self._sha256.update({folder / name: sha for name, sha in hashes.items()})
