"""`make images`: build the component image and the serving-runtime image on this machine.

One Dockerfile (images/conveyor/Dockerfile), two targets, one lock file. Steps:
  1. a container engine: docker or podman that answers; none and root on Debian -> install podman
  2. the base: BASE=auto (default) uses the registry's python:3.11.17-slim-bookworm where it
     can be pulled and otherwise a Debian bookworm base made here with mmdebstrap;
     BASE=registry or BASE=debian forces one (the one documented switch)
  3. the wheelhouse: `pip download` of the hashed requirements.lock (+ setuptools/wheel to build
     the one sdist), and the conveyor wheel in images/dist/, so the build installs offline and
     checks hashes
  4. `build --network none` of both targets, tagged conveyor.COMPONENT_IMAGE / SERVING_IMAGE
  5. checks: runs as uid 10001 with no network, `conveyor --version` equals this checkout's
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conveyor import COMPONENT_IMAGE, SERVING_IMAGE, __version__  # noqa: E402
from conveyor.containers import IMAGE_USER, Engine, find_engine  # noqa: E402
from conveyor.errors import ContainerError  # noqa: E402

REGISTRY_BASE = "docker.io/library/python:3.11.17-slim-bookworm"
DEBIAN_BASE = "localhost/conveyor-base:bookworm-python3.11"
DEBIAN_PACKAGES = "python3,python3-venv,ca-certificates"
ENGINE_PACKAGES = ["podman", "buildah", "runc", "uidmap", "slirp4netns"]
# Build requirements of kfp-server-api (the lock's one sdist); pinned, fetched beside it.
BUILD_REQUIREMENTS = ["setuptools==84.2.1", "wheel==0.45.1"]
WHEELHOUSE = ROOT / "images" / "wheelhouse"
DIST = ROOT / "images" / "dist"  # the conveyor wheel alone: its layer is the only one rebuilt
DOCKERFILE = ROOT / "images" / "conveyor" / "Dockerfile"


def step(n: int, text: str) -> None:
    print(f"[{n}/5] {text}", flush=True)


def sh(*cmd: str, **kw: object) -> None:
    subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]


def apt_install(packages: list[str]) -> None:
    """Install Debian packages when we may (root with apt-get); else say what to install."""
    missing = [p for p in packages if not shutil.which(p.replace("uidmap", "newuidmap"))]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ContainerError(f"install {' '.join(missing)} (as root: apt-get install -y ...)")
    print(f"      apt-get install {' '.join(missing)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    quiet = {"stdout": subprocess.DEVNULL, "env": env}
    sh("apt-get", "update", "-qq", **quiet)
    sh("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing, **quiet)


def engine() -> Engine:
    try:
        return find_engine()
    except ContainerError:
        if os.environ.get("CONVEYOR_ENGINE") not in (None, "", "podman"):
            raise
    apt_install(ENGINE_PACKAGES)
    return find_engine("podman")


def debian_base(eng: Engine) -> str:
    """A Python 3.11 base made from Debian's packages alone (no registry needed)."""
    if eng.image_exists(DEBIAN_BASE):
        return DEBIAN_BASE
    apt_install(["mmdebstrap"])
    with tempfile.TemporaryDirectory(prefix="conveyor-base-") as tmp:
        tar = Path(tmp) / "rootfs.tar"
        print(f"      mmdebstrap bookworm ({DEBIAN_PACKAGES}) -> {DEBIAN_BASE}", flush=True)
        sh(
            "mmdebstrap", "--quiet", "--variant=minbase", f"--include={DEBIAN_PACKAGES}",
            "bookworm", str(tar),
        )  # fmt: skip
        eng.run("import", "--change", 'CMD ["python3"]', str(tar), DEBIAN_BASE, capture=True)
    return DEBIAN_BASE


def base_image(eng: Engine, mode: str) -> str:
    if mode == "debian":
        return debian_base(eng)
    if eng.image_exists(REGISTRY_BASE):
        return REGISTRY_BASE
    pulled = eng.run("pull", "-q", REGISTRY_BASE, check=mode == "registry", capture=True,
                     timeout=600)  # fmt: skip
    if pulled.returncode == 0:
        return REGISTRY_BASE
    print(f"      {REGISTRY_BASE} cannot be pulled here: using a Debian base", flush=True)
    return debian_base(eng)


def wheelhouse() -> None:
    """Everything the build installs, fetched on the host (where PyPI is reachable)."""
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    quiet = {"stderr": subprocess.DEVNULL}  # pip's per-package notes about extra indexes
    sh(*pip, "download", "--require-hashes", "--no-deps", "-r", str(ROOT / "requirements.lock"),
       "-d", str(WHEELHOUSE), **quiet)  # fmt: skip
    sh(*pip, "download", "--no-deps", *BUILD_REQUIREMENTS, "-d", str(WHEELHOUSE), **quiet)
    shutil.rmtree(DIST, ignore_errors=True)
    leftover = not (ROOT / "build").exists()  # setuptools builds in-tree, under build/
    sh(*pip, "wheel", "--no-deps", "-w", str(DIST), str(ROOT), **quiet)
    if leftover:
        shutil.rmtree(ROOT / "build", ignore_errors=True)


def revision() -> str:
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=False)  # fmt: skip
    return done.stdout.strip() or "unknown"


def build(eng: Engine, base: str, target: str, tag: str) -> None:
    args = ["build", "-f", str(DOCKERFILE), "--target", target, "-t", tag]
    args += ["--build-arg", f"BASE_IMAGE={base}", "--build-arg", f"REVISION={revision()}"]
    # Offline build: every package comes from the wheelhouse, so none can come from elsewhere.
    args += ["--network", "none"]
    eng.run(*args, str(ROOT), capture=True)


def check(eng: Engine) -> None:
    """Non-root, offline, and the same conveyor as this checkout."""
    for tag in (COMPONENT_IMAGE, SERVING_IMAGE):
        offline = ["run", "--rm", "--network", "none", "--read-only"]
        out = eng.run(*offline, "--entrypoint", "conveyor", tag, "--version", capture=True).stdout
        uid = eng.run(*offline, "--entrypoint", "id", tag, "-u", capture=True).stdout.strip()
        if out.strip() != f"conveyor {__version__}" or uid != IMAGE_USER.split(":")[0]:
            raise ContainerError(
                f"{tag}: `conveyor --version` printed {out.strip()!r} as uid {uid}; expected "
                f"'conveyor {__version__}' as uid {IMAGE_USER.split(':')[0]}"
            )
        print(f"      {tag}: {out.strip()}, uid {uid}, revision "
              f"{eng.image_label(tag, 'org.opencontainers.image.revision')[:12]}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", choices=["auto", "registry", "debian"],
                        default=os.environ.get("BASE", "auto") or "auto")  # fmt: skip
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        eng = engine()
        step(1, f"engine: {eng.name}")
        base = base_image(eng, args.base)
        step(2, f"base: {base}")
        wheelhouse()
        step(3, f"wheelhouse: {len(list(WHEELHOUSE.iterdir()))} files in {WHEELHOUSE}")
        build(eng, base, "component", COMPONENT_IMAGE)
        build(eng, base, "serving", SERVING_IMAGE)
        step(4, f"built {COMPONENT_IMAGE} and {SERVING_IMAGE}")
        check(eng)
        step(5, f"checked: non-root, offline ({time.monotonic() - started:.0f} s in all)")
    except (ContainerError, subprocess.CalledProcessError) as exc:
        print(f"make images: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
