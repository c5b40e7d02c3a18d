"""The suites beyond the ladder (`todoscale bench` is the ladder): realtime fan-out, jobs,
imports, encryption, server choice; run from a checkout (`python -m bench`, `python -m
bench.realtime`, ...), results under bench/results/."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
