"""The container engine on this machine (docker or podman), behind one small interface.

Used by ``make images`` (scripts/images.py), the container runner of compiled pipelines
(conveyor.pipelines.containers) and the serving-runtime tests: each runs exactly what a cluster
runs, the same image with the same command, so "it works here" means "it starts there".
"""

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from conveyor.errors import ContainerError

__all__ = ["IMAGE_USER", "REPO_CONF", "ContainerError", "Engine", "find_engine"]

# podman settings for hosts that cannot raise limits or mix cgroup v1/v2 (see that file).
REPO_CONF = Path(__file__).resolve().parents[1] / "images" / "containers.conf"
# uid:gid of the images' user, the manifests' runAsUser.
IMAGE_USER = "10001:10001"


def _works(cmd: list[str], env: dict[str, str]) -> bool:
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@dataclass
class Engine:
    """``docker`` or ``podman`` on PATH, with the environment its commands need."""

    name: str
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    def cmd(self, *args: str) -> list[str]:
        return [self.name, *args]

    def run(
        self, *args: str, check: bool = True, capture: bool = False, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run one engine command; a failure names the command and its last output lines."""
        done = subprocess.run(
            self.cmd(*args), env=self.env, text=True, capture_output=capture,
            timeout=timeout, check=False,
        )  # fmt: skip
        if check and done.returncode != 0:
            tail = "\n".join(((done.stderr or "") + (done.stdout or "")).splitlines()[-15:])
            raise ContainerError(
                f"`{self.name} {' '.join(args[:3])} ...` exited with {done.returncode}"
                + (f":\n{tail}" if tail else "")
            )
        return done

    def image_exists(self, ref: str) -> bool:
        return _works(self.cmd("image", "inspect", ref), self.env)

    def image_label(self, ref: str, label: str) -> str:
        done = self.run(
            "image", "inspect", "--format", f'{{{{index .Config.Labels "{label}"}}}}', ref,
            capture=True,
        )  # fmt: skip
        return done.stdout.strip()


def _podman_env() -> dict[str, str]:
    env = dict(os.environ)
    if "CONTAINERS_CONF" not in env and REPO_CONF.is_file():
        env["CONTAINERS_CONF"] = str(REPO_CONF)
    return env


def find_engine(name: str | None = None) -> Engine:
    """The engine named by ``name`` or CONVEYOR_ENGINE, else the first of docker and podman
    that answers ``info`` (a docker client without a daemon does not count)."""
    wanted = name or os.environ.get("CONVEYOR_ENGINE") or ""
    for candidate in [wanted] if wanted else ["docker", "podman"]:
        if not shutil.which(candidate):
            continue
        env = _podman_env() if candidate == "podman" else dict(os.environ)
        if _works([candidate, "info"], env):
            return Engine(candidate, env)
    which = wanted or "docker or podman"
    raise ContainerError(
        f"no running container engine ({which}) on this machine. Install one, e.g. as root "
        "on Debian: `apt-get install -y podman buildah runc uidmap slirp4netns` "
        "(`make images` does this itself when run as root), or start the docker daemon"
    )
