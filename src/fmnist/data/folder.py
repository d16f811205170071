"""A user's own photo collection as a `Dataset`: one sub-folder per class.

```
my-photos/
  boots/   a.jpg b.png …
  sandals/ …
```
Every photo goes through `fmnist.images.photo` (the same recipe `fmnist predict` uses), so a model
trained on the folder sees exactly what it will see at prediction time. Class names are the
sub-folder names in sorted order; any number of classes (at least two) works.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from fmnist.data.dataset import Dataset
from fmnist.errors import DataError
from fmnist.images.decode import IMAGE_SUFFIXES, refused_note
from fmnist.images.photo import DEFAULT_MAX_PIXELS, PhotoError, prepare_photo

_MAX_LISTED_ERRORS = 10


def image_files(folder: Path) -> list[Path]:
    """The image files directly inside `folder`, sorted by name; hidden files are skipped."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in IMAGE_SUFFIXES)


def load_image_folder(path: Path | str, size: int = 28, *, skip_bad: bool = False,
                      max_pixels: int = DEFAULT_MAX_PIXELS) -> Dataset:
    """Read `path/<class>/<photo>` into a `Dataset` of `size`×`size` uint8 images.

    A photo that cannot be read stops the load with a list of every bad file (training on a
    silently shrunken data set is worse than an error), unless `skip_bad` is set, in which case
    the skipped files are listed in `dataset.info["skipped"]`.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        raise DataError(f"{root}: expected one sub-folder per class (at least two), found "
                        f"{len(class_dirs)}; put each class's photos in its own sub-folder")
    images: list[np.ndarray] = []
    labels: list[int] = []
    errors: list[str] = []
    for label, class_dir in enumerate(class_dirs):
        files = image_files(class_dir)
        if not files:
            looked = ", ".join(sorted(IMAGE_SUFFIXES))
            raise DataError(f"{class_dir}: no photos (looked for {looked})"
                            f"{refused_note(class_dir.iterdir())}")
        for file in files:
            try:
                images.append(prepare_photo(file, size, max_pixels=max_pixels).image)
                labels.append(label)
            except PhotoError as exc:
                errors.append(str(exc))
    if errors and not skip_bad:
        listed = "\n  ".join(errors[:_MAX_LISTED_ERRORS])
        more = f"\n  … and {len(errors) - _MAX_LISTED_ERRORS} more" \
            if len(errors) > _MAX_LISTED_ERRORS else ""
        raise DataError(f"{root}: {len(errors)} photo(s) could not be used:\n  {listed}{more}\n"
                        "Fix or remove them (or pass skip_bad=True to leave them out).")
    if not images:
        raise DataError(f"{root}: none of the photos could be used")
    stacked = np.stack(images)
    label_array = np.asarray(labels, dtype=np.int64)
    digest = hashlib.sha256(stacked.tobytes() + label_array.tobytes()).hexdigest()
    return Dataset(stacked, label_array, tuple(p.name for p in class_dirs),
                   source=str(root), checksum=digest,
                   info={"size": size, "skipped": errors})
