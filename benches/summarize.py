"""Turn bench_core.py's --benchmark-json output into the Rust/Python ratio table (Markdown).

python benches/summarize.py bench-core.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# Speed-ratio goals (Rust over the pure-Python twin) of the core issue.
GOALS = {
    "cram_md5_verify": 3.0,
    "cram_md5_verify_prepared": 50.0,
    "apop_verify": 2.0,
    "decode_response+parse_plain": 1.5,
}


def _format_time(stats: dict[str, float] | None) -> str:
    if stats is None:
        return "n/a"
    seconds = stats["min"]
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.2f} µs"
    return f"{seconds * 1e9:.0f} ns"


def _format_ratio(ratio: float | None) -> str:
    return f"{ratio:.1f}x" if ratio is not None else "n/a"


def summarize(report: dict[str, Any]) -> str:
    stats: dict[str, dict[str, dict[str, float]]] = {}
    for bench in report["benchmarks"]:
        info = bench["extra_info"]
        stats.setdefault(info["primitive"], {})[info["implementation"]] = bench["stats"]
    lines = [
        "| primitive | Rust | Python twin | stdlib | Rust/Python (min) | (median) | goal |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    missed = []
    for primitive, rows in stats.items():
        rust, python, stdlib = rows.get("rust"), rows.get("python"), rows.get("stdlib")
        ratio = python["min"] / rust["min"] if rust and python else None
        median_ratio = python["median"] / rust["median"] if rust and python else None
        goal = GOALS.get(primitive)
        verdict = ""
        if goal is not None:
            met = ratio is not None and ratio >= goal
            verdict = f"≥ {goal:g}x {'met' if met else 'MISSED'}"
            if not met:
                missed.append(primitive)
        lines.append(
            f"| `{primitive}` | {_format_time(rust)} | {_format_time(python)} | "
            f"{_format_time(stdlib)} | {_format_ratio(ratio)} | {_format_ratio(median_ratio)} | "
            f"{verdict} |"
        )
    machine: dict[str, Any] = report.get("machine_info", {})
    cpu = machine.get("cpu", {}).get("brand_raw", "this CPU")
    lines.append("")
    lines.append(
        f"Times are the minimum per call of one pytest-benchmark run ({report.get('datetime')}) "
        f"on {cpu}, Python {machine.get('python_version')}."
    )
    if missed:
        lines.append(f"Goals missed: {', '.join(missed)}.")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    print(summarize(json.loads(Path(argv[1]).read_text(encoding="utf-8"))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
