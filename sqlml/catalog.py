"""The model catalog: a folder of `<model>/<version>/{model.txt | model.onnx, meta.json}`.

LightGBM's own text format or ONNX, plus JSON metadata; never pickle. A version appears by renaming
a complete temporary folder into place, so readers never see half a model and a failed
TRAIN leaves nothing behind. Two writers racing for one version number both succeed: the
loser of the rename takes the next number.

>>> import tempfile
>>> cat = Catalog(tempfile.mkdtemp())
>>> cat.save("churn", "tree\\n", {"task": "binary"}).version
1
>>> cat.versions("churn")
[1]
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlml.errors import CatalogError, UnknownModelError, did_you_mean

MODEL_FILE = "model.txt"
META_FILE = "meta.json"
SERVING_FILE = "serving.json"
METRICS_FILE = "metrics.jsonl"
LEARNING_FILE = "learning.json"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,127}$")


@dataclass(frozen=True)
class ModelVersion:
    """One stored version: its name, number, folder and metadata."""

    name: str
    version: int
    path: Path
    meta: dict[str, Any]

    @property
    def model_path(self) -> Path:
        return self.path / self.meta.get("model_file", MODEL_FILE)

    def model_data(self) -> bytes:
        """The model file's bytes, checked against the checksum saved beside it: an edited or
        truncated file is a CatalogError, never handed to LightGBM (which may abort on it)."""
        path = self.model_path
        try:
            data = path.read_bytes()
        except OSError as err:
            raise CatalogError(f"Cannot read model file {path}: {err.strerror or err}.") from err
        expected = self.meta.get("model_sha256")
        if expected is not None and checksum(data) != expected:
            raise CatalogError(
                f"Model file {path} was changed or truncated after it was saved (its checksum differs).",
                hint=f"Restore it, or DROP MODEL {self.name} VERSION {self.version} and train it again.",
            )
        return data

    def model_text(self) -> str:
        """The model file as text (LightGBM's format)."""
        try:
            return self.model_data().decode()
        except UnicodeDecodeError as err:
            raise CatalogError(f"Model file {self.model_path} is not text: {err}.") from err


def checksum(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def write_error(path: Path, err: OSError) -> CatalogError:
    """An OSError met while writing the catalog, as a CatalogError naming the place."""
    reason = err.strerror or str(err)
    return CatalogError(
        f"Cannot write to the catalog at {path}: {reason}.",
        hint="Check that the catalog folder (--catalog, SQLML_CATALOG) is a writable folder with free space.",
    )


@dataclass(frozen=True)
class Promotion:
    """A version made the serving one: since when (event time in microseconds; None for a
    batch TRAIN) and why."""

    version: int
    reason: str
    since_us: int | None


@dataclass(frozen=True)
class Serving:
    """A continuously trained model's serving version (`serving.json`) and its promotions, in order."""

    version: int
    reason: str
    history: tuple[Promotion, ...]


@dataclass(frozen=True)
class Learning:
    """Where a durable continuous TRAIN stands (`learning.json`): the query, the last window it
    finished, and the serving version and challenger then."""

    query_id: str
    window_end: str
    serving: int | None
    challenger: int | None


def check_name(name: str) -> str:
    """A model name, lower-cased, or a CatalogError for names that could escape the folder."""
    lowered = name.lower()
    if not _NAME.match(lowered):
        raise CatalogError(
            f"Invalid model name '{name}'.",
            hint="Use letters, digits and underscores, starting with a letter or underscore.",
        )
    return lowered


class Catalog:
    """A model catalog rooted at a folder (created on first write)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if _NAME.match(p.name) and self.versions(p.name))

    def versions(self, name: str) -> list[int]:
        folder = self.root / check_name(name)
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())

    def get(self, name: str, version: int | None = None) -> ModelVersion:
        """A stored version (the latest when `version` is None)."""
        name = check_name(name)
        versions = self.versions(name)
        if not versions:
            raise UnknownModelError(f"Unknown model '{name}'.", hint=did_you_mean(name, self.names()))
        if version is None:
            version = versions[-1]
        elif version not in versions:
            listed = ", ".join(map(str, versions))
            raise UnknownModelError(f"Model '{name}' has no version {version}.", hint=f"Its versions are {listed}.")
        path = self.root / name / str(version)
        return ModelVersion(name, version, path, self._read_meta(path / META_FILE))

    def _read_meta(self, path: Path) -> dict[str, Any]:
        try:
            meta = json.loads(path.read_text())
        except FileNotFoundError as err:
            raise CatalogError(f"Model metadata file {path} is missing.") from err
        except (OSError, ValueError) as err:
            raise CatalogError(
                f"Model metadata file {path} is corrupt: {err}.",
                hint="Restore it, or DROP MODEL that version and train it again.",
            ) from err
        if not isinstance(meta, dict) or not {"task", "features", "trainer"} <= meta.keys():
            raise CatalogError(
                f"Model metadata file {path} is corrupt: it lacks task, features or trainer.",
                hint="Restore it, or DROP MODEL that version and train it again.",
            )
        return meta

    def save(
        self, name: str, model: str | bytes, meta: dict[str, Any], file: str = MODEL_FILE,
        extra: dict[str, bytes] | None = None,
    ) -> ModelVersion:  # fmt: skip
        """Store a new version atomically and return it; `meta['version']` is set here. The
        model is text (LightGBM's) or bytes (ONNX), written to `file` in the version's folder,
        with `extra` files beside it (the validation rows' scores)."""
        name = check_name(name)
        folder = self.root / name
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".tmp-{uuid.uuid4().hex}"
            tmp.mkdir()
        except OSError as err:
            raise write_error(folder, err) from err
        try:
            data = model.encode() if isinstance(model, str) else model
            (tmp / file).write_bytes(data)
            for extra_name, extra_data in (extra or {}).items():
                (tmp / extra_name).write_bytes(extra_data)
            version = self._last_number(name) + 1
            while True:
                meta = {**meta, "name": name, "version": version, "model_file": file, "model_sha256": checksum(data)}
                (tmp / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
                target = folder / str(version)
                try:
                    if target.exists():
                        raise FileExistsError(target)
                    os.rename(tmp, target)
                    return ModelVersion(name, version, target, meta)
                except OSError as err:
                    if not isinstance(err, FileExistsError) and err.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
                    version += 1
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise write_error(folder, err) from err
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    # -- serving version, learning progress and metrics log ----------------------------
    def _read_json(self, name: str, file: str, what: str, hint: str) -> dict[str, Any] | None:
        path = self.root / check_name(name) / file
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise CatalogError(f"{what} file {path} is corrupt: {err}.", hint=hint) from err
        if not isinstance(data, dict):
            raise CatalogError(f"{what} file {path} is corrupt: not a JSON object.", hint=hint)
        return data

    def serving(self, name: str) -> Serving | None:
        """Which version serves and why, with the history of promotions (None: never set, as
        for a model only ever trained in batch)."""
        hint = f"Restore it, or delete it to serve the latest version of '{name}'."
        data = self._read_json(name, SERVING_FILE, "Serving", hint)
        if data is None:
            return None
        try:
            history = tuple(Promotion(int(h["version"]), str(h["reason"]), h.get("since_us")) for h in data["history"])
            return Serving(int(data["version"]), str(data["reason"]), history)
        except (KeyError, TypeError, ValueError) as err:
            raise CatalogError(f"Serving file of '{name}' is corrupt: {err!r}.", hint=hint) from err

    def set_serving(self, name: str, version: int, reason: str, since_us: int | None) -> None:
        """Make `version` the serving one (atomically), keeping the history of promotions."""
        current = self.serving(name)
        if current is not None and current.version == version:
            return  # already serving (a restarted run repeating a promotion)
        history = [*(current.history if current else ()), Promotion(version, reason, since_us)]
        data = {"version": version, "reason": reason, "history": [asdict(h) for h in history]}
        self._replace(name, SERVING_FILE, json.dumps(data))

    def _replace(self, name: str, file: str, text: str) -> None:
        """Write a model's file atomically (temporary file, then rename)."""
        folder = self.root / check_name(name)
        tmp = folder / f".{file}-{uuid.uuid4().hex}"
        try:
            tmp.write_text(text)
            os.replace(tmp, folder / file)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise write_error(folder, err) from err

    def learning(self, name: str) -> Learning | None:
        """Where a durable continuous TRAIN of this model stands."""
        hint = "Delete it to train from the start."
        data = self._read_json(name, LEARNING_FILE, "Progress", hint)
        if data is None:
            return None
        try:
            return Learning(**data)
        except TypeError as err:
            raise CatalogError(f"Progress file of '{name}' is corrupt: {err}.", hint=hint) from err

    def set_learning(self, name: str, state: Learning) -> None:
        self._replace(name, LEARNING_FILE, json.dumps(asdict(state)))

    def metrics_path(self, name: str) -> Path:
        return self.root / check_name(name) / METRICS_FILE

    def append_metrics(self, name: str, row: dict[str, Any], sync: bool = True) -> None:
        """Append one row to the model's metrics log (JSON lines, one write per row); `sync`
        waits until it is on disk (for runs that must survive a crash)."""
        path = self.metrics_path(name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as log:
                log.write(json.dumps(row, default=str) + "\n")
                if sync:
                    log.flush()
                    os.fsync(log.fileno())
        except OSError as err:
            raise write_error(path, err) from err

    def _last_number(self, name: str) -> int:
        """The highest version number ever used (dropped versions leave a `<n>.dropped` mark),
        so numbers are never reused, not even after the whole model was dropped."""
        used = [int(p.name.split(".")[0]) for p in (self.root / name).iterdir() if p.name.split(".")[0].isdigit()]
        return max(used, default=0)

    def drop(self, name: str, version: int | None = None) -> list[int]:
        """Remove a version, or every version of a model (with its serving, progress and metrics
        files); returns the versions removed. Metadata is not read, so a corrupt version drops too."""
        name = check_name(name)
        versions = self.versions(name)
        if not versions:
            raise UnknownModelError(f"Unknown model '{name}'.", hint=did_you_mean(name, self.names()))
        if version is not None and version not in versions:
            raise UnknownModelError(
                f"Model '{name}' has no version {version}.", hint=f"Its versions are {', '.join(map(str, versions))}."
            )
        removed = [version] if version is not None else versions
        folder = self.root / name
        try:
            for number in removed:
                (folder / f"{number}.dropped").touch()
                trash = self.root / f".trash-{uuid.uuid4().hex}"
                os.rename(folder / str(number), trash)
                shutil.rmtree(trash, ignore_errors=True)
            if version is None:
                for file in (SERVING_FILE, LEARNING_FILE, METRICS_FILE):
                    (folder / file).unlink(missing_ok=True)
        except OSError as err:
            raise write_error(folder, err) from err
        return removed
