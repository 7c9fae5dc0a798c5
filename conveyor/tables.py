"""Reading and writing tables (CSV or Parquet, by extension) with errors that say what to do.

pandas is imported by the functions that read or write a table, not with the module: finding,
hashing and naming files (``resolve_table``, ``sha256_file``) stay cheap."""

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.errors import BadInputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "column_names",
    "copy_as_parquet",
    "iter_frames",
    "probe_table",
    "read_json_object",
    "read_table",
    "resolve_table",
    "sha256_file",
    "write_json",
    "write_table",
    "write_text",
]


SUPPORTED = (".csv", ".parquet", ".pq")


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise BadInputError(
            f"{path}: unsupported table format {suffix or '(none)'!r}; "
            f"use one of {', '.join(SUPPORTED)}"
        )
    return suffix


# A KFP Dataset artifact is a folder holding one of these.
ARTIFACT_TABLES = ("data.parquet", "data.csv")


def resolve_table(path: str | os.PathLike[str]) -> Path:
    """A table file, or the single data file inside a Dataset artifact folder."""
    p = Path(path)
    if p.is_dir():
        for name in ARTIFACT_TABLES:
            if (p / name).is_file():
                return p / name
        raise BadInputError(f"{p}: is a folder with no {' or '.join(ARTIFACT_TABLES)} inside")
    return p


def _refuse_duplicate_header(p: Path) -> None:
    """pandas renames a repeated CSV column (``amount``, ``amount.1``), so a file with two
    ``amount`` columns would pass validation checking one of them; Parquet refuses such a file
    outright. A CSV header with a repeated name is bad input, as Parquet's is."""
    import csv

    try:
        with open(p, newline="", encoding="utf-8", errors="replace") as fh:
            header = next(csv.reader(fh), [])
    except (OSError, csv.Error):
        return  # pandas reports an unreadable file with its own words
    dupes = sorted({name for name in header if header.count(name) > 1})
    if dupes:
        raise BadInputError(
            f"{p}: column name(s) {dupes} appear more than once in the header; give every "
            "column its own name"
        )


def _unreadable(p: Path, exc: BaseException) -> BadInputError:
    """The error for a file pandas, csv or pyarrow could not read: its first line, named."""
    kind = "CSV" if p.suffix.lower() == ".csv" else "Parquet"
    first = (str(exc).splitlines() or [type(exc).__name__])[0]
    return BadInputError(f"{p}: unreadable {kind} file: {first}")


def _load(
    path: str | os.PathLike[str], probe: bool, columns: list[str] | None = None
) -> "tuple[Path, pd.DataFrame | None]":
    """Read a table (or with ``probe``, only enough of it to know it is readable); with
    ``columns``, only those of them the table has (a Parquet file reads no other)."""
    import pandas as pd

    p = resolve_table(path)
    suffix = _suffix(p)
    if not p.is_file():
        raise BadInputError(f"{p}: file not found; check the path (or run `conveyor sample`)")
    if suffix == ".csv":
        _refuse_duplicate_header(p)
    try:
        if suffix == ".csv":
            return p, pd.read_csv(p, nrows=5 if probe else None, low_memory=False)
        if probe:
            import pyarrow.parquet as pq

            pq.ParquetFile(p).metadata  # noqa: B018 - reading the footer is the check
            return p, None
        if columns is not None:
            import pyarrow.parquet as pq

            have = set(pq.read_schema(p).names)
            return p, pd.read_parquet(p, columns=[c for c in columns if c in have])
        return p, pd.read_parquet(p)
    except pd.errors.EmptyDataError as exc:
        raise BadInputError(f"{p}: the file is empty (no header, no rows)") from exc
    except Exception as exc:  # pandas, csv and pyarrow each raise their own types
        raise _unreadable(p, exc) from exc


def read_table(path: str | os.PathLike[str], columns: list[str] | None = None) -> "pd.DataFrame":
    """Read a CSV or Parquet file; a missing, empty or corrupt file raises BadInputError.
    ``columns``: only those of these the table has (a Parquet file reads no other column);
    the caller names the absent ones."""
    df = _load(path, probe=False, columns=columns)[1]
    assert df is not None
    return df if columns is None else df[[c for c in columns if c in df.columns]]


# Rows per batch when a data stage streams a Parquet table: ~45 MiB of pandas frame for the
# 20-column sample table, so a stage's memory stays flat whatever the table's size. Measured
# on 20M rows (bench/scale.py): reading alone peaked at 375 MiB with 200k-row batches and no
# pre-buffering, 581 MiB with 500k, and 1,072 MiB with pyarrow's default pre-buffering, which
# holds a whole row group's column chunks at once (and was slower).
BATCH_ROWS = 250_000


def iter_frames(
    path: str | os.PathLike[str], columns: list[str] | None = None, rows: int = BATCH_ROWS
) -> "Iterator[pd.DataFrame]":
    """The table in row order as pandas frames of at most ``rows`` rows (Parquet, read batch by
    batch: bounded memory), or as one frame (CSV, read whole); at least one, maybe empty.
    ``columns``: only those of these the table has (all by default), so a stage reads no more
    than it checks; the caller names the absent ones."""
    p = resolve_table(path)
    if _suffix(p) == ".csv":
        yield read_table(p, columns)
        return
    import pyarrow.parquet as pq

    probe_table(p)
    try:
        reader = pq.ParquetFile(p, pre_buffer=False)
        if columns is not None:
            columns = [c for c in columns if c in reader.schema_arrow.names]
        empty = True
        for batch in reader.iter_batches(batch_size=rows, columns=columns):
            empty = False
            yield batch.to_pandas()
        if empty:
            yield reader.schema_arrow.empty_table().to_pandas()
    except (OSError, ValueError) as exc:  # ArrowIOError, ArrowInvalid: a damaged row group
        raise _unreadable(p, exc) from exc


def column_names(path: str | os.PathLike[str]) -> list[str]:
    """The table's column names, from the Parquet footer or the CSV header (no rows read)."""
    p = probe_table(path)
    if _suffix(p) == ".csv":
        import pandas as pd

        return [str(c) for c in pd.read_csv(p, nrows=0).columns]
    import pyarrow.parquet as pq

    return list(pq.read_schema(p).names)


def probe_table(path: str | os.PathLike[str]) -> Path:
    """Cheap readability check (Parquet footer, first CSV lines) before a pipeline starts."""
    return _load(path, probe=True)[0]


def _write(df: "pd.DataFrame", path: str, suffix: str) -> None:
    import pandas as pd

    if suffix == ".csv":
        df.to_csv(path, index=False)
        return
    try:
        df.to_parquet(path, index=False)
    except (ValueError, TypeError):
        # Parquet needs one type per column: a mixed object column (numbers and text, as in
        # a corrupted feed) is kept as text so the batch can still be written and validated.
        mixed = {
            c: "string"
            for c in df.columns
            if df[c].dtype == object and pd.api.types.infer_dtype(df[c]).startswith("mixed")
        }
        if not mixed:
            raise
        df.astype(mixed).to_parquet(path, index=False)


def writable_parent(path: str | os.PathLike[str]) -> Path:
    """``path`` with its folder made; a folder that cannot be (a file in the way, no
    permission, read-only) is bad input naming the path, not a traceback."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(
            f"{p}: cannot create its folder {p.parent} ({exc.strerror or exc}); "
            "choose a path you can write to"
        ) from exc
    if not os.access(p.parent, os.W_OK):
        raise BadInputError(f"{p}: its folder {p.parent} is not writable; choose another path")
    return p


@contextlib.contextmanager
def _atomic(path: str | os.PathLike[str]) -> Iterator[tuple[Path, str]]:
    """A temp file beside ``path`` to write; renamed onto ``path`` when the block succeeds,
    removed when it fails, so a crash never leaves half a file behind."""
    p = writable_parent(path)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield p, tmp
        os.replace(tmp, p)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_table(df: "pd.DataFrame", path: str | os.PathLike[str]) -> Path:
    """Write atomically (temp file + rename) so a crash never leaves half a table behind."""
    with _atomic(path) as (p, tmp):
        _write(df, tmp, _suffix(p))
    return p


def copy_as_parquet(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """``src`` written at ``dest`` as Parquet: a Parquet file is copied byte for byte (no
    reading into memory, whatever its size), a CSV read and written; atomic either way."""
    source = resolve_table(src)
    if _suffix(source) == ".csv":
        return write_table(read_table(source), dest)
    with _atomic(dest) as (p, tmp):
        shutil.copyfile(source, tmp)
    return p


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, streamed: the fingerprint used for data and model lineage."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_json(doc: Any, path: str | os.PathLike[str]) -> Path:
    """Stable, diff-friendly JSON (sorted keys), parent folders created."""
    return write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", path)


def write_text(text: str, path: str | os.PathLike[str]) -> Path:
    p = writable_parent(path)
    try:
        p.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise BadInputError(
            f"{p}: cannot write ({exc.strerror or exc}); choose another path"
        ) from exc
    return p


def read_json_object(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """A JSON object from a file; missing, malformed or non-object files are bad input."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"{p}: {what} file not found")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{p}: {what} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise BadInputError(f"{p}: {what} must be a JSON object, got {type(doc).__name__}")
    return doc
