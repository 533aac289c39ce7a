"""Request bodies -> volumes -> records, for any model server (TorchServe's handler is a thin
adapter over this). Accepts a zip/tar(.gz) of DICOM files (a series or a whole study), a single
DICOM file, a NIfTI volume, or a .npy array with its spacing given separately.

Safety: archive members are written under numbered names in a private temporary folder (their
own names are never used as paths, so no traversal), and member count, total and per-member
uncompressed size and compression ratio are capped (zip bombs). Bad input raises BadInput with
an HTTP status and a message naming the problem.
"""

from __future__ import annotations

import glob
import gzip
import io
import os
import shutil
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass, field

import numpy as np

from mrseq import records as schema
from mrseq.dicom import header_geometry, load_volume, scan
from mrseq.validate import why_bad_geometry, why_unusable

MAX_MEMBERS = 10_000
MAX_TOTAL_BYTES = 2 * 1024**3  # uncompressed
MAX_MEMBER_BYTES = 256 * 1024**2
MAX_RATIO = 200  # uncompressed / compressed, per member


class BadInput(ValueError):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class Item:
    """One volume to classify and what to say about it."""

    array: np.ndarray
    affine: np.ndarray
    volume: object | None = None  # mrseq.dicom.Volume for DICOM input
    warnings: list[str] = field(default_factory=list)


@dataclass
class Decoded:
    items: list[Item]
    problems: list[dict]  # per-series or per-file issues that did not stop the request


def _checked(item: Item) -> Item:
    why = why_unusable(item.array, item.affine)
    if why:
        raise BadInput(why, 422)
    return item


def kind_of(body: bytes) -> str:
    if body[:4] == b"PK\x03\x04":
        return "zip"
    if len(body) > 262 and body[257:262] == b"ustar":
        return "tar"
    if body[:2] == b"\x1f\x8b":
        return "gzip"
    if len(body) > 132 and body[128:132] == b"DICM":
        return "dicom"
    if body[:6] == b"\x93NUMPY":
        return "npy"
    if len(body) > 348 and body[344:348] in (b"n+1\x00", b"ni1\x00"):
        return "nifti"
    return "unknown"


class Budget:
    """A request's time budget: checked between series, so a request that would outlast the
    server's response timeout answers 503 with the reason instead of getting its worker
    killed (and every other request in the queue waiting behind it)."""

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.deadline = None if seconds is None else time.monotonic() + seconds

    def check(self, done: str) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise BadInput(
                f"the request needed more than its {self.seconds:.0f} s time budget ({done}); "
                "send fewer series per request",
                503,
            )


def decode(body: bytes | None, spacing: str | None = None, budget: Budget | None = None) -> Decoded:
    if not body:
        raise BadInput(
            "empty request body: send a zip/tar of DICOM files, a DICOM file, "
            "a NIfTI volume or a .npy array"
        )
    kind = kind_of(body)
    if kind == "gzip":
        body = _gunzip(body)
        kind = kind_of(body)
        if kind not in ("tar", "nifti"):
            raise BadInput("gzip body holds neither a tar archive nor a NIfTI volume", 415)
    if kind == "nifti":
        return Decoded([_checked(_nifti(body))], [])
    if kind == "npy":
        return Decoded([_checked(_npy(body, spacing))], [])
    if kind in ("zip", "tar", "dicom"):
        return _dicom(body, kind, budget or Budget(None))
    raise BadInput(
        "unrecognised body: not a zip/tar archive, DICOM file, NIfTI volume or .npy array", 415
    )


def _gunzip(body: bytes) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(body)) as f:
            data = f.read(MAX_TOTAL_BYTES + 1)
    except (OSError, EOFError) as exc:
        raise BadInput(f"corrupt gzip body: {exc}") from None
    if len(data) > MAX_TOTAL_BYTES:
        raise BadInput("gzip body expands beyond the size limit", 413)
    return data


def _nifti(body: bytes) -> Item:
    import nibabel as nib

    try:
        image = nib.Nifti1Image.from_bytes(body)
        why = why_bad_geometry(image.shape[:3], image.affine) if len(image.shape) >= 3 else None
        if why:
            raise BadInput(why, 422)
        array = np.asarray(image.dataobj, dtype=np.float32)
    except BadInput:
        raise
    except Exception as exc:
        raise BadInput(f"unreadable NIfTI volume: {exc}") from None
    if array.ndim == 4 and array.shape[3] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise BadInput(f"NIfTI volume must be 3D, got shape {array.shape}", 422)
    return Item(array, image.affine)


def _npy(body: bytes, spacing: str | None) -> Item:
    if not spacing:
        raise BadInput(
            "a .npy array needs its voxel spacing: header X-Spacing: 0.5,0.5,3.0 "
            "(mm, for the array's axes, assumed RAS)"
        )
    try:
        values = [float(v) for v in spacing.replace("x", ",").split(",")]
        array = np.load(io.BytesIO(body), allow_pickle=False).astype(np.float32)
    except ValueError as exc:
        raise BadInput(f"bad .npy array or spacing: {exc}") from None
    if array.ndim != 3 or len(values) != 3 or min(values) <= 0:
        raise BadInput(
            f"need a 3D array and 3 positive spacings, got {array.shape} and {values}", 422
        )
    return Item(array, np.diag([*values, 1.0]))


REQUEST_PREFIX = "mrseq-req-"


def cap_memory(megabytes: int | None) -> bool:
    """Bound this process's heap (RLIMIT_DATA: every private writable mapping, so numpy's and
    torch's large buffers too) so that a request needing more fails alone with MemoryError
    instead of the pod's OOM killer taking every worker and request with it."""
    import resource

    if not megabytes:
        return False
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = int(megabytes) * 2**20
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    return True


def out_of_memory(megabytes: int | None) -> BadInput:
    cap = f"its {megabytes} MB memory cap" if megabytes else "the memory available"
    return BadInput(
        f"this request needs more memory than a worker has ({cap}); send fewer or smaller "
        "volumes per request",
        507,
    )


def sweep_stale_requests(root: str | None = None) -> list[str]:
    """Remove request folders left by worker processes that died mid-request (kill -9, OOM):
    each folder is named after the pid of the process that made it."""
    import psutil

    removed = []
    for path in glob.glob(os.path.join(root or tempfile.gettempdir(), REQUEST_PREFIX + "*")):
        pid = os.path.basename(path)[len(REQUEST_PREFIX) :].split("-")[0]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _dicom(body: bytes, kind: str, budget: Budget) -> Decoded:
    folder = tempfile.mkdtemp(prefix=f"{REQUEST_PREFIX}{os.getpid()}-")
    try:
        if kind == "dicom":
            with open(os.path.join(folder, "00000"), "wb") as f:
                f.write(body)
        else:
            _extract(body, kind, folder)
        return _volumes(folder, budget)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _extract(body: bytes, kind: str, folder: str) -> None:
    """Members -> folder/<n>; names are ignored, so paths cannot escape the folder."""
    total = 0
    try:
        members = _members(body, kind)
        for n, (size, packed, read) in enumerate(members):
            if n >= MAX_MEMBERS:
                raise BadInput(f"archive has more than {MAX_MEMBERS} files", 413)
            total += size
            if size > MAX_MEMBER_BYTES or total > MAX_TOTAL_BYTES:
                raise BadInput("archive expands beyond the size limit", 413)
            if packed and size / max(packed, 1) > MAX_RATIO:
                raise BadInput("archive member compresses suspiciously well (zip bomb?)", 413)
            with open(os.path.join(folder, f"{n:05d}"), "wb") as f:
                f.write(read()[: MAX_MEMBER_BYTES + 1])
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise BadInput(f"corrupt {kind} archive: {exc}") from None


def _members(body: bytes, kind: str):
    """(uncompressed size, compressed size or 0, reader) for each regular file."""
    if kind == "zip":
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    yield info.file_size, info.compress_size, lambda i=info: archive.read(i)
        return
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as archive:
        for info in archive:
            if info.isfile():  # links, devices and folders are skipped
                yield info.size, 0, lambda i=info: archive.extractfile(i).read()


def _volumes(folder: str, budget: Budget) -> Decoded:
    """Volumes of the files in a request folder; problems in the user's terms (the member's
    number in the archive, never a server path or a raw exception text), in the same shape
    as a prediction record's `warnings`."""

    def problem(where: dict, why: str) -> None:
        problems.append(schema.problem(_scrub(why, folder), **where))

    result = scan([folder])
    problems: list[dict] = []
    for path, why in result.skipped.items():
        problem({"path": f"archive member {os.path.basename(path)}"}, why)
    items = []
    for n, group in enumerate(result.groups):
        budget.check(f"{n} of {len(result.groups)} volumes read")
        where = schema.where(group, path=False)  # never a server path
        if group.error:
            problem(where, group.error)
            continue
        why = why_bad_geometry(*header_geometry(group))  # before any pixel is decoded
        if why:
            problem(where, why)
            continue
        try:
            volume = load_volume(group)
        except ValueError as exc:  # ours: says what is wrong with the series
            problem(where, f"cannot read pixels: {exc}")
            continue
        except Exception:  # a decoder's internals: not for the client
            problem(where, "cannot read the pixel data of this series")
            continue
        why = why_unusable(volume.array, volume.affine)
        if why:
            problem(where, why)
            continue
        warnings = [_scrub(w, folder) for w in volume.warnings]
        items.append(Item(volume.array, volume.affine, volume, warnings))
    if not items:
        reasons = "; ".join(sorted({p["warnings"][0] for p in problems})) or "no files"
        raise BadInput(f"no usable MR volume in the request: {reasons}", 422)
    return Decoded(items, problems)


def _scrub(text: str, folder: str) -> str:
    """Server paths out: folder/00012 -> 'archive member 00012'."""
    return text.replace(folder + os.sep, "archive member ").replace(folder, "the request")


def records(predictor, decoded: Decoded, probs: np.ndarray, distances=None) -> list[dict]:
    """One record per volume (mrseq.records, as `mrseq predict` gives), then one per problem."""
    if distances is None:
        distances = np.full(len(probs), np.nan)
    volumes = [item.volume for item in decoded.items]
    # warnings scrubbed of server paths; the path itself is the server's, so it goes
    warnings = [list(item.warnings) for item in decoded.items]
    out = predictor.records(volumes, probs, distances, warnings)
    return [r | {"path": None} for r in out] + decoded.problems
