"""Renders docs/img/report.png and docs/img/report-index.png, the README's screenshots of the HTML report.

A real multi-stock run of the bundled samples (the embedded demo model) written by ``jaxsim.run_many``
(what ``jaxsim backtest --symbols ... --out`` runs), then each page screenshotted by headless Chromium.
Run from the repository root: ``PYTHONPATH=. python tools/report_screenshots.py [N_SIMS] [OUT]``
(needs ``chromium``, ``chromium-browser`` or ``google-chrome`` on PATH; a few minutes on 2 CPU cores).
"""

import shutil
import subprocess
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path

import jax
from PIL import Image

from jaxsim import forecasters, run_many

n = int(sys.argv[1]) if len(sys.argv) > 1 else 30  # simulations
out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp()) / "run"
browser = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
if browser is None:
    sys.exit("no chromium / chromium-browser / google-chrome on PATH")

samples = files("jaxsim.data.sample_data")
sources = {s: str(samples / f"{s}.csv.gz") for s in ("AAPL", "IBM", "MSFT")}
t = time.time()
run_many(sources, out, forecaster=forecasters.default(num_samples=64), n_sims=n, key=jax.random.key(0), progress=True)
print("run", round(time.time() - t, 1), "s:", out)


def shot(page: Path, dest: str, height: int, width: int = 1100, scale: float = 0.7) -> None:
    raw = Path(tempfile.mkdtemp()) / "shot.png"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={width},{height}"]
        + [f"--screenshot={raw}", page.as_uri()],
        check=True,
        capture_output=True,
    )
    image = Image.open(raw).convert("RGB")
    image = image.resize((int(width * scale), int(height * scale)), Image.LANCZOS)
    image.quantize(colors=96).save(dest, optimize=True)  # a small PNG: a screenshot has few colours
    print(dest, Path(dest).stat().st_size // 1024, "KiB")


shot(out / "AAPL" / "report.html", "docs/img/report.png", height=2600)
shot(out / "index.html", "docs/img/report-index.png", height=520)
