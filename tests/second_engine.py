"""A second Docker engine on this machine, standing in for a remote GPU host.

Its own data root, exec root, socket and pidfile, no bridge network: it shares nothing with
the first engine but the kernel, and hailoc reaches it as `unix://<socket>`, which it treats as
remote (no bind mounts). Started with --debug so its log holds every API request's body.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class SecondEngine:
    """A running second dockerd."""

    root: Path
    proc: subprocess.Popen[bytes]

    def restart(self, timeout: float = 60.0) -> None:
        """Start the engine again on the same data root (its images and volumes kept), as
        after a crash or a `systemctl restart docker`."""
        if self.proc.poll() is None:
            self.kill()
        # A killed dockerd leaves its containerd's socket and pid files; a new one waits on
        # them until it times out.
        for stale in (self.root / "exec" / "containerd").glob("containerd*"):
            stale.unlink(missing_ok=True)
        (self.root / "docker.pid").unlink(missing_ok=True)
        self.proc = _spawn(self.root)
        _wait_ready(self, timeout)

    @property
    def url(self) -> str:
        """Its DOCKER_HOST-style URL."""
        return f"unix://{self.root}/docker.sock"

    @property
    def log(self) -> Path:
        """dockerd's log (debug level)."""
        return self.root / "dockerd.log"

    def client(self) -> Any:
        """A Docker SDK client of this engine."""
        import docker

        return docker.DockerClient(base_url=self.url)

    def kill(self) -> None:
        """Kill the engine as a crash would (SIGKILL), then what it left running."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._reap()

    def stop(self) -> None:
        """Stop the engine and remove everything it wrote."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self._reap()
        mounts = [
            line.split()[1]
            for line in Path("/proc/mounts").read_text().splitlines()
            if line.split()[1].startswith(str(self.root))
        ]
        for mount in sorted(mounts, reverse=True):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def _reap(self) -> None:
        """Kill the containerd, shims and container processes this engine started."""
        root = str(self.root)
        for _ in range(3):
            found = False
            for pid_dir in Path("/proc").iterdir():
                if not pid_dir.name.isdigit():
                    continue
                try:
                    cmdline = (pid_dir / "cmdline").read_bytes().decode(errors="replace")
                    cgroup = (pid_dir / "cgroup").read_text(errors="replace")
                except OSError:
                    continue
                mine = root in cmdline or any(c in cgroup for c in self._container_ids())
                if mine and int(pid_dir.name) != os.getpid():
                    found = True
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(int(pid_dir.name), signal.SIGKILL)
            if not found:
                return
            time.sleep(0.5)

    def _container_ids(self) -> list[str]:
        folder = self.root / "data" / "containers"
        return [p.name for p in folder.iterdir()] if folder.is_dir() else []


def _spawn(root: Path) -> subprocess.Popen[bytes]:
    dockerd = shutil.which("dockerd")
    assert dockerd is not None
    log = (root / "dockerd.log").open("ab")
    return subprocess.Popen(
        [
            dockerd,
            "--debug",
            f"--data-root={root}/data",
            f"--exec-root={root}/exec",
            f"--host=unix://{root}/docker.sock",
            f"--pidfile={root}/docker.pid",
            "--bridge=none",
            "--iptables=false",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _wait_ready(engine: SecondEngine, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            engine.client().ping()
            return
        except Exception:
            if engine.proc.poll() is not None or time.monotonic() > deadline:
                tail = engine.log.read_text(errors="replace")[-1500:]
                engine.stop()
                raise RuntimeError(f"the second dockerd did not start:\n{tail}") from None
            time.sleep(0.3)


def start_second_engine(images: list[str], timeout: float = 60.0) -> SecondEngine:
    """Start a second dockerd and load `images` into it from the first engine."""
    dockerd = shutil.which("dockerd")
    if dockerd is None or os.geteuid() != 0:
        raise RuntimeError("a second Docker engine needs dockerd and root")
    # Unix socket paths are limited to 108 bytes: a short folder.
    root = Path(tempfile.mkdtemp(prefix="hd2-", dir="/tmp"))
    engine = SecondEngine(root, _spawn(root))
    _wait_ready(engine, timeout)
    for image in images:
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        load = subprocess.run(
            ["docker", "-H", engine.url, "load", "-q"],
            stdin=save.stdout,
            capture_output=True,
            check=False,
        )
        save.wait()
        if load.returncode != 0 or save.returncode != 0:
            engine.stop()
            raise RuntimeError(f"loading {image} failed: {load.stderr.decode()[-500:]}")
    return engine


def created_containers(log: Path) -> list[dict[str, Any]]:
    """The request bodies of every POST /containers/create the engine received (its debug
    log prints them as `form data: {...}`)."""
    import json
    import re

    bodies: list[dict[str, Any]] = []
    pending = False
    for line in log.read_text(errors="replace").splitlines():
        if re.search(r"Calling POST /v[\d.]+/containers/create", line):
            pending = True
            continue
        found = re.search(r'msg="form data: (.*)"$', line)
        if pending and found:
            text = found.group(1).encode().decode("unicode_escape")
            bodies.append(json.loads(text))
            pending = False
    return bodies
