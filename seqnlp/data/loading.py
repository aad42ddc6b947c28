"""One loader for HuggingFace Hub datasets and local files: ``load_splits(DataSpec(...))``.

A :class:`DataSpec` names a dataset -- a local directory/file/glob (relative to ``$SEQNLP_DATA``, absolute,
or relative to the working directory) or, when no such local path exists, a Hub id -- and says how to read
it. ``load_splits`` returns ``{"train": [...], "validation": [...], "test": [...]}`` whose examples are plain
dicts with *our* field names, whatever the source calls them:

=================  ==============================================
task               fields
=================  ==============================================
classification     ``text`` (str), ``label``
tagging            ``tokens`` (list[str]), ``tags`` (list[str])
translation        ``source`` (str), ``target`` (str)
dialogue           ``turns`` (list[str])
=================  ==============================================

Local csv/tsv/json/jsonl/parquet/txt files (``.gz`` too) are read by ``datasets.load_dataset``; CoNLL-U,
CoNLL columns, parallel text, DailyDialog and rt-polarity by :mod:`seqnlp.data.readers`; a directory written by
``datasets.Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` (``dataset_dict.json``, or
``dataset_info.json`` and ``state.json``) by ``datasets.load_from_disk``. Hub ClassLabel columns become their
string names (an id of -1, the GLUE "no label" marker, becomes ``None``). Every problem with the data is a
:class:`~seqnlp.data.errors.DataError`; a spec that cannot be right whatever the data (an unknown format, a
carve-out of -0.1) is a :class:`~seqnlp.config.ConfigError` -- :func:`check_data_config` says so for a task's
``data`` block before anything is read.

Example::

    spec = DataSpec("sentiment/sst2", splits={"train": "train.tsv", "validation": "dev.tsv"})
    spec = DataSpec("pos/conll2000", format="conll", carve={"validation": 0.1}, seed=1)
    spec = DataSpec("translation/multi30k", format="parallel", src_lang="de", tgt_lang="en",
                    splits={"train": "train", "validation": "val", "test": "test_2016_flickr"})
    spec = DataSpec("stanfordnlp/sst2")   # not a local path: the Hub
"""

from __future__ import annotations

import csv
import glob
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqnlp.config import ConfigError, check_choice, check_fraction
from seqnlp.data import readers
from seqnlp.data.errors import DataError
from seqnlp.data.examples import FIELDS, to_examples

__all__ = ["DataSpec", "data_root", "load_splits", "check_data_config", "FORMATS", "FIELDS", "TAG_FIELDS"]

FORMATS = (
    "auto", "csv", "tsv", "json", "jsonl", "parquet", "txt", "conllu", "conll", "parallel", "dailydialog",
    "rt_polarity",
)  # fmt: skip
TAG_FIELDS = ("upos", "xpos")  # the CoNLL-U column of a tag

_DATASETS_BUILDERS: dict[str, tuple[str, dict[str, Any]]] = {
    # na_filter=False: keep "null"/"NA"/"" as text instead of turning them into missing values.
    "csv": ("csv", {"na_filter": False}),
    # SST-2's tsv files are unquoted and their text contains '"': quoting must be off.
    "tsv": ("csv", {"delimiter": "\t", "quoting": csv.QUOTE_NONE, "na_filter": False}),
    "json": ("json", {}),
    "jsonl": ("json", {}),
    "parquet": ("parquet", {}),
    "txt": ("text", {}),
}
_SUFFIX_FORMATS = {
    ".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
    ".parquet": "parquet", ".txt": "txt", ".conllu": "conllu",
}  # fmt: skip
_SPLIT_ALIASES = {"train": ("train",), "validation": ("validation", "valid", "dev", "val"), "test": ("test",)}
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


@dataclass
class DataSpec:
    """Where a dataset is and how to read it.

    Args:
        name: a local directory, file or glob (relative to ``data_root()``, absolute, or relative to the
            working directory), or a Hub id like ``stanfordnlp/sst2`` (used when no local path matches).
        format: ``auto`` (from the file suffix) or one of :data:`FORMATS`; ignored for Hub datasets.
        subset: the Hub config name (e.g. ``de-en``).
        splits: our split name -> file name/glob relative to ``name`` (local; for ``parallel`` the prefix of
            ``{prefix}.{lang}[.gz]``, for ``rt_polarity`` of ``{prefix}.pos/.neg``) or Hub split name
            (slices like ``train[:1000]`` work). Empty: found by name (train / validation, valid, dev, val /
            test); a single local file or glob is the ``train`` split.
        columns: our field name (:data:`FIELDS`) -> column name; ``translation.de`` picks a key of a dict
            column. Empty: guessed from common column names. Tabular and Hub datasets only.
        carve: split name -> fraction (< 1) or number of examples to carve out of train when the split is
            missing, e.g. ``{"validation": 0.1}``; seeded by ``seed`` (or a ``"seed"`` key here).
        seed: seed of the carve-out.
        tag_field: ``upos`` or ``xpos`` for CoNLL-U.
        token_col, tag_col: columns of ``conll`` files (negative counts from the end).
        src_lang, tgt_lang: languages of ``parallel`` files (and of a Hub ``translation`` column).
    """

    name: str
    format: str = "auto"
    subset: str | None = None
    splits: dict[str, str] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)
    carve: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    tag_field: str = "upos"
    token_col: int = 0
    tag_col: int = 1
    src_lang: str | None = None
    tgt_lang: str | None = None

    def __post_init__(self):  # ConfigError (a ValueError): wrong whatever the data is
        check_choice(self.format, FORMATS, "DataSpec.format")
        unknown = sorted(set(self.columns) - set(FIELDS))
        if unknown:
            raise ConfigError(f"DataSpec.columns keys must be among {FIELDS}, got {unknown}")
        for split, amount in self.carve.items():
            if split != "seed":
                check_fraction(amount, f"DataSpec.carve[{split!r}]", whole=True)
        if self.format == "parallel" and not (self.src_lang and self.tgt_lang):
            raise ConfigError("DataSpec(format='parallel') needs src_lang and tgt_lang")
        check_choice(self.tag_field, TAG_FIELDS, "DataSpec.tag_field")


def check_data_config(d: Any, key: str = "data") -> None:
    """A :class:`~seqnlp.config.ConfigError` naming the key and the allowed values for what a task's data block
    (``d``, named ``key``) gets wrong whatever the data: ``format`` (:data:`FORMATS`), ``tag_field`` (upos |
    xpos), ``carve`` sizes (a fraction in (0, 1) or a whole number of examples), ``columns`` keys (:data:`FIELDS`).
    Only the fields ``d`` has are checked; call it before reading anything."""
    if hasattr(d, "format"):
        check_choice(d.format, FORMATS, f"{key}.format")
    if hasattr(d, "tag_field"):
        check_choice(d.tag_field, TAG_FIELDS, f"{key}.tag_field")
    for split, amount in dict(getattr(d, "carve", None) or {}).items():
        if split != "seed":
            check_fraction(amount, f"{key}.carve.{split}", whole=True)
    unknown = sorted(set(getattr(d, "columns", None) or {}) - set(FIELDS))
    if unknown:
        raise ConfigError(f"{key}.columns: the keys are our field names, one of {' | '.join(FIELDS)}; got {unknown}")


def data_root() -> Path:
    """The datasets directory: ``$SEQNLP_DATA``, else ``data/`` or ``../shared/data`` (relative to the
    working directory) if one exists, else ``data/``."""
    env = os.environ.get("SEQNLP_DATA")
    if env:
        return Path(env)
    for candidate in (Path("data"), Path("..", "shared", "data")):
        if candidate.is_dir():
            return candidate
    return Path("data")


def load_splits(spec: DataSpec, cache_dir: str | os.PathLike[str] | None = None) -> dict[str, list[dict]]:
    """Load every split of ``spec`` as lists of plain dicts with our field names (see the module doc).

    Args:
        spec: what to load.
        cache_dir: the ``datasets`` cache (default: its own, ``~/.cache/huggingface/datasets``).

    Returns:
        ``{split: [example, ...]}``, train first, then validation and test, then any others.

    Raises:
        DataError: the dataset is neither a local path nor loadable from the Hub (naming the paths tried and
            the Hub id), a file is empty/undecodable/malformed, a column is missing, a split is empty.
    """
    cache = None if cache_dir is None else os.fspath(cache_dir)
    found, tried = _find_local(spec.name)
    if found is None:
        splits = _load_hub(spec, tried, cache)
    elif isinstance(found, Path) and _is_saved_dataset(found):
        splits = _load_saved(spec, found)
    else:
        splits = _load_local(spec, found, cache)
    splits = _carve(splits, spec)
    order = [s for s in _SPLIT_ALIASES if s in splits] + [s for s in splits if s not in _SPLIT_ALIASES]
    return {s: splits[s] for s in order}


# ---------------------------------------------------------------------------------------------- local files
def _find_local(name: str) -> tuple[Path | list[Path] | None, list[str]]:
    """The local directory/file (or the files a glob matches) that ``name`` means, and the paths tried."""
    path = Path(name).expanduser()
    candidates = [path] if path.is_absolute() else [data_root() / path, Path.cwd() / path]
    tried = []
    for candidate in candidates:
        full = candidate.absolute()
        if str(full) in tried:
            continue
        tried.append(str(full))
        if full.exists():
            return full, tried
        if glob.has_magic(name):
            files = _glob_files(str(full))
            if files:
                return files, tried
            dirs = sorted(glob.glob(str(full), recursive=True))
            if dirs:
                raise DataError(f"the pattern matches only directories ({', '.join(dirs[:5])}), no files", name)
    return None, tried


def _glob_files(pattern: str) -> list[Path]:
    return [Path(p) for p in sorted(glob.glob(pattern, recursive=True)) if os.path.isfile(p)]


def _load_local(spec: DataSpec, found: Path | list[Path], cache_dir: str | None) -> dict[str, list[dict]]:
    if isinstance(found, Path) and found.is_dir():
        split_files = _split_files(spec, found)
    else:
        if spec.splits:
            raise ConfigError(f"DataSpec.splits needs a directory as name, but {spec.name!r} names files")
        if spec.format in ("parallel", "rt_polarity"):
            raise ConfigError(f"format {spec.format!r} needs a directory as name, got files {spec.name!r}")
        split_files = {"train": found if isinstance(found, list) else [found]}
    fmt = spec.format if spec.format != "auto" else _infer_format(split_files)
    if fmt in _DATASETS_BUILDERS:
        return _load_with_datasets(spec, fmt, split_files, cache_dir)
    if spec.columns:
        raise ConfigError(f"DataSpec.columns applies to tabular and Hub datasets, not to {fmt!r} files")
    splits = {}
    for split, files in split_files.items():
        if fmt in ("parallel", "rt_polarity"):  # one pair of files
            reader = readers.read_parallel if fmt == "parallel" else readers.read_rt_polarity
            examples = reader(*files)
            if not examples:
                raise DataError(f"no examples (empty {fmt} files {[str(f) for f in files]})", files[0])
        else:
            examples = []
            for file in files:
                file_examples = _read_with_reader(spec, fmt, file)
                if not file_examples:
                    raise DataError(f"no examples (empty {fmt} file?)", file)
                examples += file_examples
        splits[split] = examples
    return splits


def _split_files(spec: DataSpec, root: Path) -> dict[str, list[Path]]:
    """split -> files (for parallel: [src, tgt]; for rt_polarity: [pos, neg]) inside directory ``root``."""
    if spec.format == "parallel":
        suffixes = [f".{spec.src_lang}", f".{spec.tgt_lang}"]
    elif spec.format == "rt_polarity":
        suffixes = [".pos", ".neg"]
    else:
        suffixes = None
    result = {}
    if spec.splits:
        for split, pattern in spec.splits.items():
            if suffixes:
                result[split] = [_prefixed_file(root, pattern, suffix, split) for suffix in suffixes]
                continue
            files = _glob_files(str(root / pattern))
            if not files:
                dirs = [Path(p) for p in sorted(glob.glob(str(root / pattern), recursive=True)) if os.path.isdir(p)]
                if dirs:
                    raise DataError(
                        f"split {split!r}: {pattern!r} is a directory, not a data file (name the file, "
                        f"or files like {pattern.rstrip('/')}/*.EXT, inside it)",
                        dirs[0],
                    )
                raise DataError(f"split {split!r}: no file matches {pattern!r}", root)
            result[split] = files
        return result
    if spec.format == "rt_polarity":  # no official split: all of it is train
        return {"train": [_prefixed_file(root, "rt-polarity", suffix, "train") for suffix in suffixes]}
    for split, aliases in _SPLIT_ALIASES.items():
        for alias in aliases:
            if suffixes:  # parallel: {alias}.{lang}[.gz]
                files = [_existing(root / f"{alias}{suffix}") for suffix in suffixes]
                files = None if None in files else files
            else:
                if spec.format == "dailydialog":
                    patterns = [f"{alias}/dialogues_{alias}.txt", f"dialogues_{alias}.txt"]
                else:
                    patterns = [f"{alias}.*", f"*[-_.]{alias}.*"]
                files = next((fs for p in patterns if (fs := _glob_files(str(root / p)))), None)
            if files:
                result[split] = files
                break
    if not result:
        listing = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())[:20]
        raise DataError(
            f"no split files found by name (train / validation, valid, dev, val / test); the directory holds "
            f"{listing}: set DataSpec.splits (and format)",
            root,
        )
    return result


def _existing(path: Path) -> Path | None:
    gz = path.with_name(path.name + ".gz")
    return path if path.is_file() else gz if gz.is_file() else None


def _prefixed_file(root: Path, prefix: str, suffix: str, split: str) -> Path:
    found = _existing(root / f"{prefix}{suffix}")
    if found is None and (root / f"{prefix}{suffix}").is_dir():
        raise DataError(f"split {split!r}: is a directory, not a {suffix[1:]} file", root / f"{prefix}{suffix}")
    if found is None:
        raise DataError(f"split {split!r}: neither {prefix}{suffix} nor {prefix}{suffix}.gz exists", root)
    return found


def _infer_format(split_files: dict[str, list[Path]]) -> str:
    formats = set()
    for files in split_files.values():
        for file in files:
            suffixes = file.suffixes[-2:] if file.suffix == ".gz" else file.suffixes[-1:]
            formats.add(_SUFFIX_FORMATS.get(suffixes[0].lower() if suffixes else "", None))
    if len(formats) != 1 or None in formats:
        names = sorted(f.name for files in split_files.values() for f in files)
        raise DataError(f"cannot tell the format of {names} from their suffixes: set DataSpec.format")
    return formats.pop()


def _read_with_reader(spec: DataSpec, fmt: str, file: Path | list[Path]) -> list[dict]:
    if fmt == "conllu":
        return readers.read_conllu(file, tag_field=spec.tag_field)
    if fmt == "conll":
        return readers.read_conll_columns(file, token_col=spec.token_col, tag_col=spec.tag_col)
    if fmt == "dailydialog":
        return [{"turns": turns} for turns in readers.read_dailydialog(file)]
    raise AssertionError(fmt)  # parallel and rt_polarity are read as file pairs by _load_local


def _load_with_datasets(
    spec: DataSpec, fmt: str, split_files: dict[str, list[Path]], cache_dir: str | None
) -> dict[str, list[dict]]:
    """One ``datasets.load_dataset`` call per split: splits may have different columns (SST-2's test)."""
    import datasets

    builder, kwargs = _DATASETS_BUILDERS[fmt]
    splits = {}
    for split, files in split_files.items():
        for file in files:
            if fmt != "parquet" and _is_blank(file):
                raise DataError("empty file", file)
        names = [str(f) for f in files]
        try:
            loaded = datasets.load_dataset(builder, data_files={split: names}, cache_dir=cache_dir, **kwargs)[split]
        except Exception as e:  # the builders raise many types; all mean "this file is bad"
            if fmt != "parquet" and _caused_by(e, UnicodeDecodeError):
                for file in files:
                    for _ in readers.open_text(file):  # raises a DataError naming the line
                        pass
            where = names[0] if len(names) == 1 else None
            if "corresponds to no data" in str(e):  # e.g. a csv file with only a header
                raise DataError(f"no examples (empty split {split!r})", where or ", ".join(names)) from e
            raise DataError(f"could not read {'' if where else f'{names} '}as {fmt}: {_describe(e)}", where) from e
        splits[split] = to_examples(loaded, spec, ", ".join(names))
    return splits


def _is_blank(path: Path) -> bool:
    for line in readers.open_text(path, encoding="latin-1"):  # any bytes decode; only blankness matters
        if line.strip():
            return False
    return True


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    while error is not None:
        if isinstance(error, kind):
            return True
        error = error.__cause__ or error.__context__
    return False


def _describe(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    cause = error.__cause__ or error.__context__
    if cause is not None and str(cause) not in text:
        text += f" ({type(cause).__name__}: {cause})"
    return text


# ------------------------------------------------------------------------------ datasets.save_to_disk
def _is_saved_dataset(path: Path) -> bool:
    """A directory written by ``DatasetDict.save_to_disk`` (``dataset_dict.json``) or ``Dataset.save_to_disk``
    (``dataset_info.json`` and ``state.json``)."""
    return path.is_dir() and (
        (path / "dataset_dict.json").is_file()
        or ((path / "dataset_info.json").is_file() and (path / "state.json").is_file())
    )


_SLICE = re.compile(r"(?P<name>[^\[\]+]+)(?:\[(?P<start>-?\d+%?)?:(?P<stop>-?\d+%?)?\])?")


def _load_saved(spec: DataSpec, root: Path) -> dict[str, list[dict]]:
    """A saved ``DatasetDict`` (its splits by name, or ``spec.splits``: our split -> saved split, with
    ``train[:1000]`` / ``train[:10%]`` slices and ``a+b`` joins) or a saved ``Dataset`` (the train split)."""
    import datasets

    try:
        saved = datasets.load_from_disk(str(root))
    except Exception as e:  # a truncated or foreign directory: whatever datasets raises
        raise DataError(f"could not read the dataset saved with save_to_disk: {_describe(e)}", root) from e
    parts = {"train": saved} if isinstance(saved, datasets.Dataset) else dict(saved)
    if not spec.splits:
        loaded = {_canonical_split(s): ds for s, ds in parts.items()}
    else:
        loaded = {}
        for ours, theirs in spec.splits.items():
            pieces = [_saved_part(parts, piece.strip(), ours, root) for piece in str(theirs).split("+")]
            loaded[ours] = pieces[0] if len(pieces) == 1 else datasets.concatenate_datasets(pieces)
    return {split: to_examples(ds, spec, f"{root}[{split}]") for split, ds in loaded.items()}


def _saved_part(parts: dict, spec: str, ours: str, root: Path):
    m = _SLICE.fullmatch(spec)
    if m is None or m["name"] not in parts:
        raise DataError(
            f"split {ours!r}: the saved dataset has no split {spec!r} (it has {sorted(parts)}; a slice "
            f"reads like train[:1000] or train[:10%])",
            root,
        )
    ds = parts[m["name"]]

    def bound(text: str | None) -> int | None:
        if text is None:
            return None
        return round(len(ds) * int(text[:-1]) / 100) if text.endswith("%") else int(text)

    if m["start"] is None and m["stop"] is None:
        return ds
    return ds.select(range(len(ds))[bound(m["start"]) : bound(m["stop"])])


# --------------------------------------------------------------------------------------------- the Hub
def _load_hub(spec: DataSpec, tried: list[str], cache_dir: str | None) -> dict[str, list[dict]]:
    looked_for = f"no local path {' or '.join(tried)} exists (SEQNLP_DATA={os.environ.get('SEQNLP_DATA')!r})"
    if not _HUB_ID.fullmatch(spec.name):
        raise DataError(f"dataset not found: {looked_for}, and it is not a valid Hub id", spec.name)
    import datasets

    hub = f"Hub dataset {spec.name!r}" + (f" (subset {spec.subset!r})" if spec.subset else "")
    try:
        if spec.splits:
            parts = datasets.load_dataset(spec.name, spec.subset, split=list(spec.splits.values()), cache_dir=cache_dir)
            loaded = dict(zip(spec.splits, parts))
        else:
            everything = datasets.load_dataset(spec.name, spec.subset, cache_dir=cache_dir)
            loaded = {_canonical_split(s): ds for s, ds in everything.items()}
    except Exception as e:  # not found, offline, no connection, bad subset/split: all the same to the user
        offline = datasets.config.HF_HUB_OFFLINE
        note = " (offline mode is on: HF_HUB_OFFLINE / HF_DATASETS_OFFLINE)" if offline else ""
        if isinstance(e, ConnectionError) and not offline:
            note = " (the Hub could not be reached)"
        raise DataError(
            f"dataset not found: {looked_for}, and loading the {hub} failed{note}: {_describe(e)}", spec.name
        ) from e
    return {split: to_examples(ds, spec, f"{spec.name}[{split}]") for split, ds in loaded.items()}


def _canonical_split(name: str) -> str:
    return next((ours for ours, aliases in _SPLIT_ALIASES.items() if name in aliases), name)


# ------------------------------------------------------------------------------------------ carve-out
def _carve(splits: dict[str, list[dict]], spec: DataSpec) -> dict[str, list[dict]]:
    """Carve the missing splits in ``spec.carve`` out of train: seeded, disjoint, order kept."""
    seed = int(spec.carve.get("seed", spec.seed))
    wanted = {s: a for s, a in spec.carve.items() if s != "seed" and s not in splits}
    if not wanted:
        return splits
    if "train" not in splits:
        raise DataError(f"cannot carve {sorted(wanted)} out of train: there is no train split", spec.name)
    train = splits["train"]
    order = list(range(len(train)))
    random.Random(seed).shuffle(order)
    carved, start = {}, 0
    for split, amount in wanted.items():
        n = round(amount * len(train)) if amount < 1 else int(amount)
        if n < 1:
            raise DataError(f"carving {amount} of {len(train)} training examples leaves {split!r} empty", spec.name)
        carved[split] = [train[i] for i in sorted(order[start : start + n])]
        start += n
    if start >= len(train):
        raise DataError(f"carving {wanted} out of {len(train)} training examples leaves none to train on", spec.name)
    return {**splits, "train": [train[i] for i in sorted(order[start:])], **carved}
