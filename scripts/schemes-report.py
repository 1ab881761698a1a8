#!/usr/bin/env python3
"""Issue 20's report: `wrpn grid ID -o json` of a sweep over quantization schemes (e.g.
examples/sweeps/schemes-lenet5.yaml) as markdown: every cell's top-1 per scheme (mean, sample std
and each seed), the winner at each cost (the cost depends on width and bits only, so one row is
one cost), the Pareto front over all schemes together, and each scheme's own front.

Usage: wrpn grid ID -o json | scripts/schemes-report.py
"""
import json
import statistics
import sys


def seeds(c):
    return [s["final_top1"] for s in c.get("seeds", [])
            if s.get("state") == "TRIAL_SUCCEEDED" and s.get("final_top1") is not None]


def fmt(vals):
    if not vals:
        return "-"
    m = statistics.mean(vals)
    sd = f" ± {statistics.stdev(vals):.2f}" if len(vals) > 1 else ""
    return f"{m:.2f}{sd} ({' / '.join(f'{v:.2f}' for v in vals)})"


def front(points):
    """Points (cost, top1, name) on the front: none cheaper-or-equal is strictly better."""
    return [p for p in points if not any(q[0] <= p[0] and q[1] > p[1] for q in points if q is not p)]


def main():
    doc = json.load(sys.stdin)
    cells = [c for c in doc["cells"] if seeds(c)]
    schemes = []
    for c in cells:
        if c.get("scheme", "wrpn") not in schemes:
            schemes.append(c.get("scheme", "wrpn"))
    rows = {}
    for c in cells:
        k = (float(c["width"]), c["wbits"], c["abits"])
        rows.setdefault(k, {"cost": c["cost_uniform"]})[c.get("scheme", "wrpn")] = seeds(c)
    print("| width | w/a | cost | " + " | ".join(schemes) + " | best (margin over the next) |")
    print("|---|---|---:|" + "---|" * len(schemes) + "---|")
    for k in sorted(rows, key=lambda k: rows[k]["cost"]):
        r = rows[k]
        means = sorted(((statistics.mean(r[s]), s) for s in schemes if r.get(s)), reverse=True)
        best = f"{means[0][1]} (+{means[0][0] - means[1][0]:.2f})" if len(means) > 1 else ""
        print(f"| {k[0]:g}x | {k[1]}/{k[2]} | {r['cost']:.3f} | " +
              " | ".join(fmt(r.get(s, [])) for s in schemes) + f" | {best} |")
    pts = [(c["cost_uniform"], statistics.mean(seeds(c)),
            f"{c.get('scheme', 'wrpn')} {float(c['width']):g}x w{c['wbits']}/a{c['abits']}") for c in cells]
    print()
    print("Pareto front over every scheme (cost_uniform, mean top-1):")
    for p in sorted(front(pts)):
        print(f"- {p[2]}: cost {p[0]:.3f}, top-1 {p[1]:.2f}")
    for s in schemes:
        own = [p for p in pts if p[2].startswith(s + " ")]
        print(f"\n{s}'s own front: " + ", ".join(f"{p[2][len(s) + 1:]} ({p[0]:.3f}, {p[1]:.2f})"
                                                for p in sorted(front(own))))


if __name__ == "__main__":
    main()
