"""Choose each method's strength for the `methods` presets, on seeds their studies do not use.

Runs every strength of DER, DER++, online EWC and LwF (at memory M = 200 where the method
has a memory) for two seeds taken after the study's (the 16th and 17th of stabgap's seed
sequence), and picks, per method, the strength with the best final average accuracy: how
the methods' own papers tune them. Choosing by the gap instead would bias the very
findings the study tests. The chosen indices go into ``METHOD_CHOSEN`` in
stabgap/studies/presets.py; the table printed here is the one in docs/methods.md.

    python benchmarks/choose_methods.py --preset methods --out runs/method-choice
    python benchmarks/choose_methods.py --preset methods-rotated --out runs/method-choice-rot
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import data_dir, machine

from stabgap.metrics import avg_acc_final, gap_depth
from stabgap.studies.presets import METHOD_STRENGTHS, PRESETS, seed_sequence, strength_name
from stabgap.study import run_study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=("methods", "methods-rotated"), default="methods")
    parser.add_argument("--out", default="runs/method-choice")
    args = parser.parse_args()
    seeds = seed_sequence(17)[15:]
    experiments = PRESETS[args.preset].experiments
    names = {}
    for method, (_, strengths) in METHOD_STRENGTHS.items():
        for i, strength in enumerate(strengths):
            name = strength_name(method, strength)
            names[(method, i)] = name if name in experiments else f"{name}-200"
    print(f"machine: {machine()}; preset {args.preset}; seeds {seeds}")
    started = time.perf_counter()
    records = run_study(
        args.preset,
        ["er-200", *names.values()],
        seeds=seeds,
        overrides={"data_dir": data_dir()},
        out=args.out,
    )
    print(f"{len(records)} runs in {time.perf_counter() - started:.0f} s")
    by: dict[str, list] = {}
    for r in records:
        by.setdefault(r.experiment, []).append(r)

    def mean(experiment: str, f) -> float:
        return float(np.mean([f(r) for r in by[experiment]]))

    def gap(record) -> float:  # task 1's gap at the first switch, for the table only
        return record.measure(gap_depth, 1, 2)

    print(f"er-200: final ACC {mean('er-200', lambda r: avg_acc_final(r.acc)):.2f} %")
    print("| method | strength | final ACC | GD_1,2 | chosen |")
    print("| --- | --- | --- | --- | --- |")
    for method, (_, strengths) in METHOD_STRENGTHS.items():
        accs = [mean(names[(method, i)], lambda r: avg_acc_final(r.acc)) for i in
                range(len(strengths))]  # fmt: skip
        best = int(np.argmax(accs))
        for i, strength in enumerate(strengths):
            setting = ", ".join(f"{k} = {v:g}" for k, v in strength.items())
            gd = mean(names[(method, i)], gap)
            mark = f"yes (index {i})" if i == best else ""
            print(f"| {method} | {setting} | {accs[i]:.2f} | {gd:.2f} | {mark} |")


if __name__ == "__main__":
    main()
