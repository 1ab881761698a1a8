#!/usr/bin/env python3
"""Submits the quick sweep (examples/sweeps/fashion-quick.yaml: LeNet-5 at 1x and 2x width, four
precisions, 3 epochs of Fashion-MNIST on CPU), follows it to the end and prints its grid.

    pip install ./client/python         # once (offline; needs Debian's protoc and
                                        # grpc_python_plugin at build time)
    WRPN_ADDR=127.0.0.1:7070 WRPN_TOKEN=... python3 examples/python/quick_grid.py [SPEC]

The coordinator comes from WRPN_ADDR / WRPN_TOKEN / WRPN_TLS_CA or ~/.config/wrpn/config.yaml,
as for the wrpn CLI."""
import pathlib
import sys

import wrpn


def fmt(v, spec="6.2f", signed=False):
    if v is None:
        return "   n/a"
    return format(v, ("+" if signed else "") + spec)


def main():
    spec = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else
                        pathlib.Path(__file__).resolve().parent.parent / "sweeps" / "fashion-quick.yaml")
    client = wrpn.Client()
    try:
        sweep_id = client.submit(spec)
        print(f"submitted {spec.name} as sweep {sweep_id}")
        for update in client.watch(sweep_id):
            c = update.sweep.counts
            if update.event is not None:
                e = update.event
                print(f"  trial {e.trial_id} {e.state.lower():9s} "
                      f"({c.finished}/{c.total} done, {c.running} running)")
        sweep = client.sweep(sweep_id)
        print(f"sweep {sweep_id}: {sweep.state.lower()}\n")
        grid = client.grid(sweep_id)
    except wrpn.WrpnError as e:
        print(f"quick_grid: {e}", file=sys.stderr)
        return 1
    print(f"{'cell':29s} {'cost':>7s} {'top-1':>6s} {'std':>6s} {'ours':>6s} "
          f"{'paper':>6s} {'paper chg':>9s}")
    for r in sorted(grid, key=lambda r: (r.network, r.width, -r.wbits, -r.abits)):
        print(f"{r.cell:29s} {r.cost:7.3f} {fmt(r.top1)} {fmt(r.top1_std)} "
              f"{fmt(r.our_delta, signed=True)} {fmt(r.paper_top1)} {fmt(r.paper_delta, '9.2f', True)}")
    return 0 if sweep.state == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())
