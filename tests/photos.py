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
WARM = (1.12, 1.0, 0.85)  # per-channel gains of the "tinted" look


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


def _face_crops() -> list[Image.Image]:
    """Every face the default detector finds in the vendored photos, cropped with a margin
    and scaled so the face is ~120 px wide (a portrait, as in LFW)."""
    from hailoc.calibration.detect import make_detector
    from hailoc.manifest.schema import DetectorSpec

    detector = make_detector(DetectorSpec(), REPO)
    crops: list[Image.Image] = []
    for path in sorted(PHOTOS.glob("*.jpg")):
        with Image.open(path) as image:
            base = image.convert("RGB")
        for face in detector.detect(base):
            x0, y0, x1, y1 = face.box
            side = max(x1 - x0, y1 - y0)
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            box = (cx - side, cy - side, cx + side, cy + side)
            crops.append(base.crop(tuple(round(v) for v in box)).resize((250, 250)))
    return crops


def lfw_sized_identities(dst: Path, people: int = 59, images: int = 452) -> Path:
    """dst/<person>/<view>.jpg with LFW's size class (59 people, 452 images by default):
    each detected face of the vendored photos, plain, tinted warm or in grey, is one person,
    seen in up to 8 views. Generated, not real labelled data: for timing and for the
    evaluation's mechanics, not for accuracy figures."""
    crops = _face_crops()
    looks = (
        lambda im: im,
        lambda im: Image.merge("RGB", [c.point(lambda v, k=k: min(255, int(v * k)))
                                       for c, k in zip(im.split(), WARM, strict=True)]),
        lambda im: ImageOps.grayscale(im).convert("RGB"),
    )  # fmt: skip
    views = (
        lambda im: im,
        ImageOps.mirror,
        lambda im: im.rotate(5, resample=Image.Resampling.BILINEAR),
        lambda im: im.rotate(-5, resample=Image.Resampling.BILINEAR),
        lambda im: ImageEnhance.Brightness(im).enhance(0.75),
        lambda im: ImageEnhance.Brightness(ImageOps.mirror(im)).enhance(1.25),
        lambda im: im.crop((16, 16, 234, 234)).resize((250, 250)),
        lambda im: ImageEnhance.Contrast(im).enhance(0.8),
    )
    per_person = [images // people + (1 if i < images % people else 0) for i in range(people)]
    for person in range(people):
        crop = crops[person % len(crops)]
        look = looks[(person // len(crops)) % len(looks)](crop)
        folder = dst / f"person_{person:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_person[person]):
            views[index % len(views)](look).save(folder / f"{index:02d}.jpg", quality=92)
    return dst
