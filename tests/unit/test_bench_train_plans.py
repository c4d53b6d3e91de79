"""benchmarks/bench_train.py plans: a staged recipe's seconds from measured clips/s, by hand."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))
bench = importlib.import_module("bench_train")


def test_a_plan_parses_into_its_stages():
    plan = bench.Plan.parse("short-first=bf16/27:340, bf16/81:80")
    assert plan == bench.Plan("short-first", (("bf16", 27, 340), ("bf16", 81, 80)))
    assert plan.recipes("small") == [
        bench.Recipe("small", "bf16", False, 27, 0),
        bench.Recipe("small", "bf16", False, 81, 0),
    ]


@pytest.mark.parametrize("text", ["=fp32/81:10", "a=fp32/81:0", "a=fp32:10", "a=fp32/x:10"])
def test_malformed_plans_are_value_errors(text):
    with pytest.raises(ValueError):
        bench.Plan.parse(text)


def test_seconds_and_ratio_by_hand(capsys):
    rates = {bench.Recipe("small", "fp32", False, 81, 0): 4.0, bench.Recipe("small", "bf16", False, 27, 0): 20.0,
             bench.Recipe("small", "bf16", False, 81, 0): 8.0}  # fmt: skip
    today = bench.Plan.parse("today=fp32/81:100")
    short = bench.Plan.parse("short=bf16/27:100,bf16/81:25")
    assert today.seconds("small", 16, rates) == pytest.approx(100 * 16 / 4.0)  # 400 s
    assert short.seconds("small", 16, rates) == pytest.approx(100 * 16 / 20.0 + 25 * 16 / 8.0)  # 80 + 50 s
    rows = bench.print_plans([today, short], "small", 16, rates)
    assert rows[1]["x_first"] == pytest.approx(400 / 130)
    assert rows[1]["steps"] == 125
    assert "| short | bf16/27:100, bf16/81:25 | 125 | 2000 | 75600 | 130 | 3.08 |" in capsys.readouterr().out
