"""More faces from the vendored photos, without downloads: mirrored, rotated and relit copies.

The copies are other views of the same people (not new identities): enough faces for the auto
search's interval and other tests that need tens of eval faces; real measurements need real
photos.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

from tests.conftest import REPO

PHOTOS = REPO / "examples" / "photos"


def augmented_photos(dst: Path) -> Path:
    """dst/ with each vendored photo as original, mirrored, rotated +-5 deg and relit."""
    dst.mkdir(parents=True, exist_ok=True)
    for path in sorted(PHOTOS.glob("*.jpg")):
        with Image.open(path) as image:
            base = image.convert("RGB")
        views = {
            "orig": base,
            "mirror": ImageOps.mirror(base),
            "rot_p5": base.rotate(5, resample=Image.Resampling.BILINEAR),
            "rot_m5": base.rotate(-5, resample=Image.Resampling.BILINEAR),
            "dark": ImageEnhance.Brightness(base).enhance(0.75),
            "bright": ImageEnhance.Brightness(ImageOps.mirror(base)).enhance(1.25),
        }
        for name, view in views.items():
            view.save(dst / f"{path.stem}_{name}.jpg", quality=92)
    return dst


def identity_folders(dst: Path) -> Path:
    """dst/<person>/<view>.jpg: each vendored photo's (largest) face is one identity, its views
    made by a mirror, +-5 deg rotations, lighting changes and a crop. Not real labelled data:
    it exercises the evaluation; real measurements need real labelled photos."""
    flat = augmented_photos(dst.parent / f"{dst.name}-views")
    for path in sorted(flat.glob("*.jpg")):
        person, view = path.stem.rsplit("_", 1)
        if view in ("p5", "m5"):  # rot_p5 / rot_m5
            person, view = person.rsplit("_", 1)[0], f"rot_{view}"
        folder = dst / person
        folder.mkdir(parents=True, exist_ok=True)
        path.replace(folder / f"{view}.jpg")
    for folder in sorted(p for p in dst.iterdir() if p.is_dir()):
        with Image.open(folder / "orig.jpg") as image:
            w, h = image.size
            image.crop((w // 16, h // 16, w - w // 16, h - h // 16)).save(folder / "crop.jpg")
    flat.rmdir()
    return dst
