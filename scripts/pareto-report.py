#!/usr/bin/env python3
"""Issue 21's measurement report: a Pareto-pruned sweep against full grids of the same cells.

Inputs, all from the CLI or the docs:
  --pruned    `wrpn grid ID -o json` of the pruned sweep
  --trials    `wrpn trial list ID -o json` of the pruned sweep
  --curves    a folder of `wrpn trial metrics T --name top1 -o json` files, one per trial (T.json)
  --full-md   a markdown page with an "Every seed" table (docs/reproduction.md): the full grid
  --same-code `wrpn grid ID -o json` of another sweep from the same commit (optional): its cells
              that the pruned sweep trained to the end must match it seed by seed

Prints markdown: every cell with its result in the pruned sweep (final top-1, or pruned at which
epoch and top-1) and in the full grid, whether it is on each sweep's (cost_uniform, mean final
top-1) front, the cells where the fronts differ with the seed values that could explain it, the
trial-epochs used, the least any rule keeping the full grid's front could use, and a replay of
the rung rule of docs/pareto.md on the recorded top-1 curves at other margins.

Usage (see docs/reproduction.md, issue 21):
  wrpn grid 1 -o json > pruned.json; wrpn trial list 1 -o json > trials.json
  mkdir curves; for t in $(seq 1 26); do wrpn trial metrics $t --name top1 -o json > curves/$t.json; done
  scripts/pareto-report.py --pruned pruned.json --trials trials.json --curves curves \
      --full-md docs/reproduction.md --rungs 2,5
"""
import argparse
import json
import os
import re
import statistics

MIN_AUTO_MARGIN = 0.5  # server/pareto_rung.h kMinAutoMargin


def key(c):
    return (c["network"], float(c["width"]), int(c["wbits"]), int(c["abits"]),
            c.get("scheme") or "wrpn")


def label(k):
    net, width, wb, ab, scheme = k
    return f"{net} {width:g}x w{wb}/a{ab}" + ("" if scheme == "wrpn" else f" {scheme}")


def front(scores):
    """Keys of {key: (cost, top1)} that no cell of lower or equal cost beats strictly."""
    return {k for k, (cost, top) in scores.items()
            if not any(c2 <= cost and t2 > top for k2, (c2, t2) in scores.items() if k2 != k)}


def load_grid(path):
    """{key: {"cost", "finals": {seed: top1}, "trials": {seed: id}, "pruned_top1", "pruned_epoch"}}"""
    with open(path) as f:
        doc = json.load(f)
    out = {}
    for c in doc["cells"]:
        finals, trials = {}, {}
        for s in c.get("seeds", []):
            trials[int(s["seed"])] = int(s["trial_id"])
            if s.get("state") == "TRIAL_SUCCEEDED" and s.get("final_top1") is not None:
                finals[int(s["seed"])] = float(s["final_top1"])
        out[key(c)] = {"cost": c["cost_uniform"], "finals": finals, "trials": trials,
                       "pruned_top1": c.get("pruned_top1"), "pruned_epoch": c.get("pruned_epoch", 0)}
    return out


def load_full_md(path, network):
    """The "Every seed" table of a reproduction page: {key: {seed: top1}}."""
    with open(path) as f:
        lines = f.read().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("Every seed"))
    at = next(i for i in range(start, len(lines)) if lines[i].startswith("| width"))
    pairs = [tuple(int(x) for x in re.findall(r"\d+", col)) for col in lines[at].split("|")[2:-1]]
    out = {}
    for line in lines[at + 2:]:
        if not line.startswith("|"):
            break
        cols = [c.strip() for c in line.split("|")[1:-1]]
        width = float(cols[0].rstrip("x"))
        for (wb, ab), cell in zip(pairs, cols[1:]):
            if cell:
                out[(network, width, wb, ab, "wrpn")] = {
                    seed: float(v) for seed, v in enumerate(cell.split(" / "))}
    return out


def load_curves(folder, trial_ids):
    curves = {}
    for t in trial_ids:
        path = os.path.join(folder, f"{t}.json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            points = json.load(f).get("points", [])
        by_step = {int(p["step"]): float(p["value"]) for p in points if p["name"] == "top1"}
        curves[t] = [by_step[s] for s in range(len(by_step)) if s in by_step]
    return curves


def mean_finals(finals):
    return statistics.mean(finals.values()) if finals else None


def trial_epochs(trials, epochs):
    used = 0
    for t in trials:
        if t.get("state") == "TRIAL_PRUNED":
            used += int(t.get("pruned_epoch", 0))
        elif t.get("state") == "TRIAL_SUCCEEDED":
            used += epochs
        else:
            used += int(t.get("checkpoint_epoch", 0))
    return used


def replay(cells, curves, rungs, epochs, margin):
    """The rung rule of server/pareto_rung.cc (DecideRung, every trial reported) on recorded
    curves. Returns (trial-epochs, {key: mean final top-1} of the cells trained to the end,
    margins used) or None when a curve needed is not recorded (pruned earlier in the real run)."""
    alive, used, margins = set(cells), 0, []
    for r in rungs:
        scores, spread = {}, 0.0
        for k in alive:
            tops = [curves.get(t, [])[r - 1] if len(curves.get(t, [])) >= r else None
                    for t in cells[k]["trials"].values()]
            if None in tops:
                return None
            scores[k] = (cells[k]["cost"], statistics.mean(tops))
            spread = max(spread, max(tops) - min(tops))
        m = max(MIN_AUTO_MARGIN, 2 * spread) if margin == "auto" else float(margin)
        margins.append(m)
        promoted = set()
        for k, (cost, top) in scores.items():
            best = max(t2 for c2, t2 in scores.values() if c2 <= cost)
            if best - top <= m:
                promoted.add(k)
        used += sum(len(cells[k]["trials"]) * r for k in alive - promoted)
        alive = promoted
    finals = {}
    for k in alive:
        tops = [curves.get(t, []) for t in cells[k]["trials"].values()]
        if any(len(c) < epochs for c in tops):
            return None
        finals[k] = statistics.mean(c[epochs - 1] for c in tops)
        used += len(cells[k]["trials"]) * epochs
    return used, finals, margins


def fmt_seeds(finals):
    return " / ".join(f"{v:.2f}" for _, v in sorted(finals.items()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pruned", required=True)
    ap.add_argument("--trials", required=True)
    ap.add_argument("--curves")
    ap.add_argument("--full-md")
    ap.add_argument("--same-code")
    ap.add_argument("--network", default="lenet5")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--rungs", default="2,5")
    ap.add_argument("--replay-margins", default="0,0.25,0.5,1,auto")
    args = ap.parse_args()
    rungs = [int(r) for r in args.rungs.split(",")]
    pruned = load_grid(args.pruned)
    with open(args.trials) as f:
        trials = json.load(f)
    full = load_full_md(args.full_md, args.network) if args.full_md else {}
    same = load_grid(args.same_code) if args.same_code else {}

    pscores = {k: (v["cost"], mean_finals(v["finals"])) for k, v in pruned.items() if v["finals"]}
    fscores = {k: (pruned[k]["cost"], statistics.mean(v.values())) for k, v in full.items()
               if k in pruned}
    pf, ff = front(pscores), front(fscores)

    print("| cell | cost | pruned sweep (seeds) | its front | full grid (seeds) | its front |")
    print("|---|---:|---|---|---|---|")
    for k in sorted(pruned, key=lambda k: pruned[k]["cost"]):
        v = pruned[k]
        if v["finals"]:
            mine = f"{mean_finals(v['finals']):.2f} ({fmt_seeds(v['finals'])})"
        elif v["pruned_top1"] is not None:
            mine = f"pruned at epoch {v['pruned_epoch']}: {v['pruned_top1']:.2f}"
        else:
            mine = "-"
        theirs = (f"{statistics.mean(full[k].values()):.2f} ({fmt_seeds(full[k])})"
                  if k in full else "-")
        print(f"| {label(k)} | {v['cost']:.3f} | {mine} | {'yes' if k in pf else ''} | "
              f"{theirs} | {'yes' if k in ff else ''} |")

    if full:
        missed, extra = sorted(ff - pf), sorted(pf - ff)
        print()
        print(f"Front of the full grid: {len(ff)} of {len(fscores)} cells; of the pruned sweep: "
              f"{len(pf)}; missed: {len(missed)}, extra: {len(extra)}.")
        for k in missed + extra:
            v = pruned[k]
            here = (fmt_seeds(v["finals"]) if v["finals"]
                    else f"pruned at epoch {v['pruned_epoch']}: {v['pruned_top1']:.2f}")
            print(f"- {label(k)} ({'missed' if k in missed else 'extra'}): full grid "
                  f"{fmt_seeds(full[k]) if k in full else '-'}, pruned sweep {here}")
        dominated = [k for k in fscores if k not in ff]
        seeds = {k: len(pruned[k]["trials"]) for k in pruned}
        best_case = sum(seeds.values()) * args.epochs - sum(
            seeds[k] * (args.epochs - rungs[0]) for k in dominated)
        print(f"\nThe least any rule keeping the full grid's front can use: every cell it dominates "
              f"({len(dominated)}: {', '.join(label(k) for k in sorted(dominated))}) stopped at "
              f"epoch {rungs[0]}: {best_case} trial-epochs "
              f"({100.0 * best_case / (sum(seeds.values()) * args.epochs):.0f}%).")

    if same:
        print("\nSame commit, trained to the end in both sweeps, seed by seed:")
        for k in sorted(set(same) & set(pruned), key=lambda k: pruned[k]["cost"]):
            a, b = pruned[k]["finals"], same[k]["finals"]
            common = sorted(set(a) & set(b))
            if not common:
                continue
            same_all = all(a[s] == b[s] for s in common)
            print(f"- {label(k)}: {fmt_seeds({s: a[s] for s in common})} vs "
                  f"{fmt_seeds({s: b[s] for s in common})}: {'identical' if same_all else 'DIFFERENT'}")

    used = trial_epochs(trials, args.epochs)
    total = len(trials) * args.epochs
    print(f"\nTrial-epochs: {used} of the full grid's {total} ({100.0 * used / total:.0f}%).")

    if args.curves:
        ids = [t for v in pruned.values() for t in v["trials"].values()]
        curves = load_curves(args.curves, ids)
        print("\nReplay of the rung rule on the recorded top-1 curves (every trial reported), "
              "its front compared with this sweep's front:\n")
        print("| margin | margins used per rung | trial-epochs | front | vs this sweep's front |")
        print("|---|---|---:|---|---|")
        for m in args.replay_margins.split(","):
            r = replay(pruned, curves, rungs, args.epochs, m)
            if r is None:
                print(f"| {m} | - | - | a curve it needs was not recorded (pruned earlier here) | |")
                continue
            used_r, finals, margins = r
            fr = front({k: (pruned[k]["cost"], v) for k, v in finals.items()})
            miss, ext = sorted(pf - fr), sorted(fr - pf)
            diff = "; ".join(filter(None, [
                "missed " + ", ".join(label(k) for k in miss) if miss else "",
                "extra " + ", ".join(label(k) for k in ext) if ext else ""])) or "same"
            print(f"| {m} | {', '.join(f'{x:.2f}' for x in margins)} | {used_r} "
                  f"({100.0 * used_r / total:.0f}%) | {len(fr)} cells | {diff} |")


if __name__ == "__main__":
    main()
