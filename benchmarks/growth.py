"""The growth curve: bench_run.py at several sizes, a table, a fitted slope and a PNG.

    REMINDERS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/growth.py            # 10k, 100k, 1M, 5M; writes
                                                         # docs/img/growth.png
    .venv/bin/python benchmarks/growth.py --plot-only    # redraw from the saved JSON

Each size runs benchmarks/bench_run.py in its own process (--json into
benchmarks/results/growth-<n>.json), so peak RSS is per size. Needs the `bench`
extra (matplotlib). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PNG = HERE.parent / "docs" / "img" / "growth.png"
SERIES = {
    "1": "baseline (one statement, minimal table)",
    "2": "select_due + dispatch",
    "4": "`reminders run --json` (new process)",
    "3": "idempotent rerun (services)",
    "1b": "baseline rerun (all conflicts)",
}


def fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares slope and intercept."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )
    return slope, my - slope * mx


def median(result: dict[str, Any], key: str) -> float | None:
    times = [r[key] for r in result["rounds"] if key in r]
    return statistics.median(times) if times else None


def table(results: list[dict[str, Any]]) -> None:
    print("| assignments | due | " + " | ".join(SERIES.values()) + " | peak RSS (MiB) | load |")
    print("|---:|---:|" + "---:|" * len(SERIES) + "---:|---|")
    for r in results:
        cells = [f"{median(r, k):.3f}" if median(r, k) is not None else "" for k in SERIES]
        rss = r.get("cli_peak_rss_mb")
        load = ", ".join(str(x[0]) for x in r["load_averages"])
        print(
            f"| {r['assignments']:,} | {r['due']:,} | "
            + " | ".join(cells)
            + f" | {rss:.0f} | {load} |"
        )
    print()
    for key, name in SERIES.items():
        points = [(r["due"], median(r, key)) for r in results if median(r, key) is not None]
        if len(points) >= 2:
            slope, intercept = fit([p[0] for p in points], [p[1] for p in points])
            print(f"{name}: {slope * 1e6:.2f} µs per due reminder, intercept {intercept:.3f} s")


def plot(results: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for key, name in SERIES.items():
        points = [(r["due"], median(r, key)) for r in results if median(r, key) is not None]
        if points:
            left.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
    left.set_xlabel("due reminders")
    left.set_ylabel("seconds (median round)")
    left.set_xscale("log")
    left.set_yscale("log")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=7)
    left.set_title("time")
    rss = [
        (r["assignments"], r.get("cli_peak_rss_mb")) for r in results if r.get("cli_peak_rss_mb")
    ]
    right.plot([p[0] for p in rss], [p[1] for p in rss], marker="o", label="reminders run")
    right.axhline(300, color="red", linestyle="--", label="300 MB target")
    right.set_xscale("log")
    right.set_ylim(0, 350)
    right.set_xlabel("assignments")
    right.set_ylabel("peak RSS (MiB)")
    right.grid(True, alpha=0.3)
    right.legend(fontsize=7)
    right.set_title("memory of the whole process")
    fig.tight_layout()
    PNG.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PNG, dpi=110)
    print(f"wrote {PNG}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000, 5_000_000]
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds below 5M; 1 at 5M")
    parser.add_argument("--plot-only", action="store_true", help="redraw from saved JSON")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    results = []
    for size in args.sizes:
        out = RESULTS / f"growth-{size}.json"
        if not args.plot_only:
            repeat = 1 if size >= 5_000_000 else args.repeat
            subprocess.run(
                [
                    sys.executable,
                    str(HERE / "bench_run.py"),
                    "--assignments",
                    str(size),
                    "--repeat",
                    str(repeat),
                    "--skip-0004",
                    "--json",
                    str(out),
                ],
                check=True,
            )
        if out.exists():
            results.append(json.loads(out.read_text()))
    table(results)
    plot(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
