"""Find and decode photos safely: every file either yields an RGB image or a reason it did not."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
# Decoding bigger images costs >150 MB each for no gain: faces are aligned to 112 px.
MAX_PIXELS = 50_000_000
# JPEGs can be decoded at 1/2..1/8 scale for free; aim for this long side when that helps.
DRAFT_SIDE = 4096


class ImageRejected(Exception):
    """A file that cannot be used, with the reason recorded in the set's manifest."""


@dataclass(frozen=True)
class Listing:
    """Candidate image files (sorted, relative to the root) and entries skipped while walking."""

    files: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]


def list_images(root: Path) -> Listing:
    """Walk `root` (following directory symlinks once, never in a loop); sorted for determinism."""
    files: list[str] = []
    skipped: list[tuple[str, str]] = []
    seen: set[str] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        real = os.path.realpath(folder)
        if real in seen:
            skipped.append((_rel(folder, root), "symlink loop (directory already visited)"))
            continue
        seen.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            skipped.append((_rel(folder, root), f"unreadable directory: {exc.strerror or exc}"))
            continue
        for entry in entries:
            rel = _rel(Path(entry.path), root)
            try:
                is_dir = entry.is_dir()
                is_file = entry.is_file()
            except OSError as exc:
                loop = exc.errno == errno.ELOOP
                skipped.append((rel, "symlink loop" if loop else f"cannot stat: {exc.strerror}"))
                continue
            if is_dir:
                stack.append(Path(entry.path))
            elif not is_file:
                reason = "broken or looping symlink" if entry.is_symlink() else "not a regular file"
                skipped.append((rel, reason))
            elif Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
                files.append(rel)
            else:
                skipped.append(
                    (rel, f"not an image file ({Path(entry.name).suffix or 'no suffix'})")
                )
    return Listing(tuple(sorted(files)), tuple(sorted(skipped)))


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def read_source(path: Path) -> tuple[bytes, str]:
    """File bytes and their sha256; raises ImageRejected for unreadable or empty files."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageRejected(f"unreadable: {exc.strerror or exc}") from None
    if not data:
        raise ImageRejected("empty file (0 bytes)")
    return data, hashlib.sha256(data).hexdigest()


def decode_rgb(data: bytes) -> Image.Image:
    """Decode to 8-bit RGB: EXIF orientation applied, CMYK/gray/16-bit/palette converted."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image: Image.Image = Image.open(io.BytesIO(data))
            width, height = image.size
            if image.format == "JPEG" and max(width, height) > DRAFT_SIDE:
                image.draft("RGB", (DRAFT_SIDE, DRAFT_SIDE))
                width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageRejected(
                    f"image too large ({width}x{height} > {MAX_PIXELS // 1_000_000} MP); "
                    "downscale it first"
                )
            image.load()
            image = ImageOps.exif_transpose(image) or image
        except ImageRejected:
            raise
        except Image.DecompressionBombError:
            raise ImageRejected("image too large (decompression-bomb limit)") from None
        except (UnidentifiedImageError, SyntaxError):
            raise ImageRejected("not a readable image") from None
        except (OSError, ValueError, EOFError) as exc:
            raise ImageRejected(f"corrupt image: {exc}") from None
    return _to_rgb8(image)


def _to_rgb8(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # PIL's own conversion clips 16-bit values at 255; rescale the range instead.
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        gray = np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent pixels become white, the way a viewer shows them, not black.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
