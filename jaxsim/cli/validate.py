"""Checks of the ``jaxsim backtest`` arguments, all before any data is loaded or anything compiles.

Pure functions of the parsed :class:`argparse.Namespace` (and of what is on disk): each raises
:class:`UsageError` with a one-line message naming the flag and the problem; the command prints it
as ``error: ...`` and exits with :data:`EXIT_USAGE`.

Exit codes of the command line: :data:`EXIT_OK` 0 (everything done), :data:`EXIT_FAILED` 1 (some
stocks failed; the others are written), :data:`EXIT_USAGE` 2 (bad input: flags, paths, data),
:data:`EXIT_INTERRUPTED` 130 (Ctrl-C or SIGTERM; rerun the same command to resume).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from jaxsim.errors import ConfigError

__all__ = [
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_USAGE",
    "EXIT_INTERRUPTED",
    "EXIT_CODES_HELP",
    "UsageError",
    "PRICE_SUFFIXES",
    "RESAMPLE_CHOICES",
    "RESAMPLE_HELP",
    "parse_symbols",
    "find_symbol_files",
    "sims_arg",
    "check_counts",
    "check_model_flags",
    "check_hyperparams",
    "check_sources",
    "check_out",
    "check_output_json",
    "prepare_out",
    "prepare_output_json",
    "validate_backtest",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_CODES_HELP = (
    "exit codes: 0 ok; 1 some stocks failed (the others are written); 2 bad input (flags, "
    "paths, price data); 130 interrupted (rerun the same command to resume)"
)
PRICE_SUFFIXES = (".csv", ".csv.gz", ".parquet")
RESAMPLE_CHOICES = ("1D",)  # jaxsim.data.table.RESAMPLE_RULES, named here so that the parser loads no pandas
RESAMPLE_HELP = (
    "aggregate bars finer than a day (hourly, 5-minute, ...) to daily bars: open of the first bar, "
    "high max, low min, close of the last, volume sum, per calendar date in the timestamps' own time zone"
)
_POINT_MODELS = ("naive", "historical-mean")  # point forecasters: no weights, no samples
_BASELINE_MODELS = (*_POINT_MODELS, "volatility")  # no hyper-parameters


class UsageError(ConfigError):
    """A flag, or a path given to one, is wrong (exit code 2)."""


def parse_symbols(text: str) -> list[str]:
    """``"aem, ibm,AEM"`` -> ``["AEM", "IBM"]`` (upper-cased, duplicates dropped, order kept)."""
    symbols = list(dict.fromkeys(s.strip().upper() for s in text.split(",") if s.strip()))
    if not symbols:
        raise UsageError(f"--symbols {text!r} names no symbol (give a comma-separated list, e.g. AEM,IBM)")
    return symbols


def find_symbol_files(symbols, data_dir) -> dict[str, Path]:
    """The price file of every symbol in ``data_dir`` (``SYM``/``sym``/as given, .csv/.csv.gz/.parquet).

    Raises:
      UsageError: listing every symbol without a file at once.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UsageError(f"--data-dir {data_dir}: {'not a folder' if data_dir.exists() else 'no such folder'}")
    found, missing = {}, []
    for sym in symbols:
        names = dict.fromkeys((sym, sym.upper(), sym.lower()))
        hit = next(
            (data_dir / f"{n}{ext}" for n in names for ext in PRICE_SUFFIXES if (data_dir / f"{n}{ext}").is_file()),
            None,
        )
        if hit is None:
            missing.append(sym)
        else:
            found[sym.upper()] = hit
    if missing:
        raise UsageError(
            f"no price file in {data_dir} for {len(missing)} symbol(s): {', '.join(missing)} "
            f"(looked for <SYMBOL>{'/'.join(PRICE_SUFFIXES)})"
        )
    return found


def sims_arg(text: str):
    """``--sims``: a positive integer, or ``all`` (the full history)."""
    if text.strip().lower() == "all":
        return "all"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sims must be an integer or 'all', got {text!r}") from None


def check_counts(args) -> None:
    """``--sims`` (or ``all``), ``--samples``, ``--chunk-size``, ``--max-context``, ``--seeds`` must be
    positive integers; ``--length-bucket`` positive or 0."""
    for flag, value in (
        ("--sims", getattr(args, "sims", 1)),
        ("--samples", getattr(args, "samples", None)),
        ("--chunk-size", getattr(args, "chunk_size", 1)),
        ("--max-context", getattr(args, "max_context", None)),
        ("--seeds", getattr(args, "seeds", None)),
    ):
        if value is not None and value != "all" and value < 1:
            raise UsageError(f"{flag} must be >= 1, got {value}")
    bucket = getattr(args, "length_bucket", 0)
    if bucket is not None and bucket < 0:
        raise UsageError(f"--length-bucket must be >= 1, or 0 for exact lengths, got {bucket}")


def check_model_flags(args, model: str | None = None) -> None:
    """Refuse flags that the chosen model would ignore.

    Args:
      model: the model that will run (after ``--hyperparams`` picked one); default ``args.model``.
    """
    model = model or args.model
    weights, tokenizer = getattr(args, "weights", None), getattr(args, "tokenizer", None)
    if weights and model not in ("toto", "kronos"):
        raise UsageError(f"--weights applies to --model toto or kronos, not {model} (the flag would be ignored)")
    if tokenizer and model != "kronos":
        raise UsageError(f"--tokenizer applies to --model kronos only, not {model}")
    if getattr(args, "samples", None) is not None and model in _POINT_MODELS:
        raise UsageError(f"--samples applies to sampling models (default, toto, kronos); {model} makes point forecasts")
    if model == "toto" and not weights:
        raise UsageError("--model toto needs --weights DIR (a converted Toto weight folder)")
    if model == "kronos" and not (weights and tokenizer):
        raise UsageError("--model kronos needs --weights DIR and --tokenizer DIR (converted Kronos folders)")
    for flag, value in (("--weights", weights), ("--tokenizer", tokenizer)):
        if value and not Path(value).is_dir():
            raise UsageError(f"{flag} {value}: {'not a folder' if Path(value).exists() else 'no such folder'}")


def check_hyperparams(args) -> None:
    """``--hyperparams DIR`` must be a folder, and only for models that take hyper-parameters."""
    hyper = getattr(args, "hyperparams", None)
    if hyper is None:
        return
    if args.model in _BASELINE_MODELS:
        raise UsageError(f"--hyperparams configures toto or kronos; --model {args.model} takes no hyper-parameters")
    if not Path(hyper).is_dir():
        raise UsageError(f"--hyperparams {hyper}: {'not a folder' if Path(hyper).exists() else 'no such folder'}")


def check_sources(args) -> dict[str, Path] | None:
    """``--csv`` must be a price file; ``--symbols`` need ``--data-dir`` files (all missing ones listed).

    Returns:
      symbol -> file for ``--symbols``, else None.
    """
    csv = getattr(args, "csv", None)
    if csv is not None:
        path = Path(csv)
        if path.is_dir():
            raise UsageError(
                f"--csv {csv} is a folder; give one price file (for a folder of files use --symbols A,B --data-dir DIR)"
            )
        if not path.exists():
            raise UsageError(f"--csv {csv}: no such file")
        if not path.name.lower().endswith(PRICE_SUFFIXES + (".txt", ".pq")):
            raise UsageError(f"--csv {csv}: unsupported file type; use .csv, .csv.gz or .parquet")
    if getattr(args, "data_dir", None) and not getattr(args, "symbols", None):
        raise UsageError("--data-dir is only used with --symbols")
    if getattr(args, "symbols", None):
        return find_symbol_files(parse_symbols(args.symbols), args.data_dir or ".")
    return None


def _result_symbol(folder: Path) -> str | None:
    """The symbol of a single-stock result folder (its metadata.json), or None."""
    try:
        return json.loads((folder / "metadata.json").read_text()).get("symbol")
    except (OSError, ValueError, AttributeError):
        return None


def check_out(out, symbols, *, multi: bool, force: bool = False) -> None:
    """``--out`` must not be a file (nor below one), nor a folder holding other results (unless ``--force``).

    Whether it can be created and written is :func:`prepare_out`'s check (it creates folders).

    Args:
      out: the ``--out`` value (None: nothing to check).
      symbols: the symbols this run writes.
      multi: a ``--symbols`` run (a run folder with one subfolder per stock and a manifest).
      force: allow replacing another symbol's single-stock results.
    """
    if out is None:
        return
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is an existing file; give a folder (it is created when missing)")
    if not out.is_dir():
        blocked = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
        if blocked is not None:
            raise UsageError(f"--out {out}: {blocked} is a file, not a folder")
        return
    held = _result_symbol(out)
    has_manifest = (out / "manifest.json").exists()
    if multi:
        if held is not None:
            raise UsageError(
                f"--out {out} holds the single-stock results of {held}; use another folder for a --symbols run"
            )
        return
    if has_manifest:
        raise UsageError(f"--out {out} holds a multi-stock run (manifest.json); use another folder")
    (symbol,) = symbols
    if held is not None and held != symbol and not force:
        raise UsageError(
            f"--out {out} holds the results of {held}; writing {symbol} there would replace them "
            f"(use another folder, or --force)"
        )


def _first_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    return next((p for p in (path, *path.parents) if p.exists()), Path("."))


def prepare_out(out, flag: str = "--out", *, file: bool = False) -> None:
    """Create ``out``'s missing parent folders and prove that ``out`` can be written, before any compute.

    The folder itself is left to the writer (a new result folder appears whole, renamed into place),
    so what is checked is the folder a first write lands in: ``out`` when it exists, else its parent,
    by creating and removing a probe file there.

    Args:
      out: the path (None: nothing to check).
      flag: the flag named in the message.
      file: ``out`` names a file (e.g. ``jaxsim compare --out table.csv``), not a folder.

    Raises:
      UsageError: one line naming the folder that cannot be created or written and why.
    """
    if out is None:
        return
    out = Path(out).expanduser()
    blocked = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise UsageError(f"{flag} {out}: {blocked} is a file, not a folder")
    if file and out.is_dir():
        raise UsageError(f"{flag} {out} is a folder; give a file name")
    _make_writable(out if out.is_dir() else out.parent, f"{flag} {out}")


def _make_writable(target: Path, shown: str) -> None:
    """Create the folder ``target`` (and its parents) and write and remove a probe file in it.

    Raises:
      UsageError: ``"{shown}: cannot create/write ..."``.
    """
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        where = _first_existing(target)
        raise UsageError(f"{shown}: cannot create the folder {target} in {where} ({e.strerror or e})") from None
    try:
        with tempfile.TemporaryFile(dir=target, prefix=".jaxsim-probe-"):
            pass
    except OSError as e:
        raise UsageError(f"{shown}: cannot write in {target} ({e.strerror or e})") from None


def check_output_json(path, *, multi: bool = False, label=None) -> None:
    """``--output-json PATH``: a file path (not a folder, nor below a file); with ``--symbols`` it holds
    ``{symbol}``.

    Whether its folder can be created and written is :func:`prepare_output_json`'s check (it creates
    folders)."""
    if path is None:
        if label is not None:
            raise UsageError("--output-label applies to --output-json only")
        return
    if multi and "{symbol}" not in str(path):
        raise UsageError(
            f"--output-json {path}: with --symbols, put {{symbol}} in the path (one file per stock), "
            "e.g. out/{symbol}.json"
        )
    if multi and label is not None:
        raise UsageError("--output-label names one stock; it does not apply to --symbols")
    path = Path(str(path).replace("{symbol}", "SYMBOL"))
    if path.is_dir():
        raise UsageError(f"--output-json {path} is a folder; give a file name")
    blocked = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise UsageError(f"--output-json {path}: {blocked} is a file, not a folder")


def prepare_output_json(path) -> None:
    """Create ``--output-json``'s missing parent folders and prove they can be written, before any compute.

    A ``{symbol}`` template is checked up to its first templated part: ``out/{symbol}.json`` checks
    ``out``; ``runs/{symbol}/summary.json`` checks ``runs`` (each stock's own folder is made when its
    file is written).
    """
    if path is None:
        return
    path = Path(path).expanduser()
    templated = next((i for i, part in enumerate(path.parts) if "{symbol}" in part), None)
    if templated is None:
        prepare_out(path, "--output-json", file=True)
    else:
        _make_writable(Path(*path.parts[:templated]) if templated else Path("."), f"--output-json {path}")


def validate_backtest(args, *, available_samples=()) -> dict[str, Path] | None:
    """Every check of ``jaxsim backtest`` in order; returns the ``--symbols`` files (or None).

    Args:
      available_samples: the bundled sample symbols, to check the positional SYMBOL when neither
        ``--csv`` nor ``--symbols`` is given.
    """
    check_counts(args)
    files = check_sources(args)
    if files is None and getattr(args, "csv", None) is None and available_samples:
        if args.symbol.upper() not in available_samples:
            raise UsageError(
                f"no bundled sample {args.symbol!r} (available: {', '.join(available_samples)}); "
                "use --csv PATH for a file or --symbols A,B --data-dir DIR"
            )
    if getattr(args, "hyperparams", None) is None or args.model != "default":
        check_model_flags(args)
    check_hyperparams(args)
    # else: best/<SYMBOL>.json picks the model per symbol; checked once it is read (resolved_model)
    if files is not None:
        symbols = list(files)
    elif getattr(args, "csv", None) is not None:
        symbols = [_stem(args.csv)]
    else:
        symbols = [args.symbol.upper()]
    check_out(getattr(args, "out", None), symbols, multi=files is not None, force=getattr(args, "force", False))
    check_output_json(
        getattr(args, "output_json", None), multi=files is not None, label=getattr(args, "output_label", None)
    )
    if getattr(args, "plots", False) and not (files is not None and getattr(args, "out", None)):
        raise UsageError("--plots applies to --symbols with --out (a single stock's --out always has equity.png)")
    prepare_out(getattr(args, "out", None))  # last: these create missing parent folders
    prepare_output_json(getattr(args, "output_json", None))
    return files


def _stem(path) -> str:
    name = Path(path).name
    for suffix in PRICE_SUFFIXES + (".txt", ".pq"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)].upper()
    return name.upper()
