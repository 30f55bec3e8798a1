"""``jaxsim report DIR``: the HTML report of a result folder written earlier.

``DIR`` is one stock's folder (``jaxsim backtest --out DIR``, ``BacktestResult.save``) or a
multi-stock run folder (``--symbols ... --out DIR``, ``run_many``). Each stock folder without a
``report.html`` (written by an older jaxsim) gets one, rendered from its saved files
(:func:`jaxsim.report.html.folder_report`); ``--force`` re-renders those that have one (a page
rendered from a folder lacks the MaxDiff heatmap, which needs the prices). A run folder also gets
``index.html``. A stock folder's ``done.json`` is updated with the new page's size and digest, so a
resumed run still sees the stock as complete.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

__all__ = ["add_report_command", "cmd_report", "render_folder"]


def add_report_command(sub) -> argparse.ArgumentParser:
    """Add ``report`` to the ``jaxsim`` subcommands."""
    report = sub.add_parser(
        "report",
        help="write report.html for an existing --out folder",
        description="Render report.html (one self-contained page) in a result folder written by "
        "`jaxsim backtest --out`, and index.html in a multi-stock run folder. Exit 0 when written, 2 on "
        "a folder with no results.",
    )
    report.add_argument("dir", metavar="DIR", help="a stock folder or a multi-stock run folder")
    report.add_argument("--force", action="store_true", help="re-render pages that exist")
    report.set_defaults(func=cmd_report)
    return report


def _is_stock(folder: Path) -> bool:
    return (folder / "metadata.json").is_file()


def _update_done(folder: Path, name: str, data: bytes) -> None:
    """Record the rewritten ``name`` in the folder's ``done.json`` (when it has one)."""
    from jaxsim.atomic import write_file
    from jaxsim.shell.manifest import DONE, json_bytes

    path = folder / DONE
    if not path.is_file():
        return
    done = json.loads(path.read_text())
    done.setdefault("files", {})[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    write_file(path, json_bytes(done))


def _render_stock(folder: Path, force: bool) -> bool:
    """Write the folder's report.html unless it has one (and not ``force``); True when written."""
    from jaxsim.atomic import write_file
    from jaxsim.report.html import REPORT, folder_report

    if (folder / REPORT).is_file() and not force:
        return False
    data = folder_report(folder).encode()
    write_file(folder / REPORT, data)
    _update_done(folder, REPORT, data)
    return True


def render_folder(directory, force: bool = False) -> tuple[Path, list[str], list[str]]:
    """Render the pages of ``directory`` (see the module docstring).

    Returns:
      ``(page, written, kept)``: the page to open (``report.html`` of a stock folder, ``index.html``
      of a run folder) and the stock folders whose report was written or left as it was.

    Raises:
      FileNotFoundError: ``directory`` is not a folder, or holds no result.
    """
    from jaxsim.report.cross_stock import write_index
    from jaxsim.report.html import INDEX, REPORT

    out = Path(directory)
    if not out.is_dir():
        raise FileNotFoundError(f"{out} is not a folder")
    if _is_stock(out):
        written = _render_stock(out, force)
        return out / REPORT, [out.name] if written else [], [] if written else [out.name]
    stocks = sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".") and _is_stock(p))
    if not stocks:
        raise FileNotFoundError(f"{out} holds no jaxsim results (no metadata.json in it or in its sub-folders)")
    written, kept = [], []
    for folder in stocks:
        (written if _render_stock(folder, force) else kept).append(folder.name)
    write_index(out, [p.name for p in stocks if (p / "stats.csv").is_file()])
    return out / INDEX, written, kept


def cmd_report(args) -> int:
    """``jaxsim report DIR [--force]``; returns the exit code."""
    try:
        page, written, kept = render_folder(args.dir, force=args.force)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if written:
        print(f"report.html written for {len(written)} stock(s): {', '.join(written)}")
    if kept:
        print(f"report.html kept for {len(kept)} stock(s) (--force re-renders): {', '.join(kept)}")
    print(f"open {page}")
    return 0
