"""PyTorch eager reference for the fractional-GPU goal (issue #19): the trials of a sweep spec run
one after another on one GPU, each a full training run (epochs x the training split in batches,
then one evaluation pass over the test split per epoch), with the WRPN ResNet-20 of
bench/pytorch_bench.py, SGD, bf16 autocast and channels-last. Data: Fashion-MNIST-shaped
synthetic tensors already on the GPU (60,000 train / 10,000 test, 28x28x1, 10 classes), the
same sizes the service's trials read, so only the compute is compared. Prints and writes (--json)
the wall time of the whole grid.

Usage: python3 bench/pytorch_grid.py SPEC.yaml [--epochs N] [--json FILE]
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_bench import make  # noqa: E402


def cells(spec_path):
    """(width, wbits, abits, seed) of every trial of a spec whose axes are the reproduction
    grid's (a list of blocks with precision strings "w/a"); parsed by hand, no YAML module."""
    out = []
    for line in open(spec_path):
        line = line.strip()
        if not line.startswith("- {network:"):
            continue
        body = line[3:-1]
        width = float(body.split("width:")[1].split(",")[0])
        precs = body.split("precision: [")[1].split("]")[0].replace('"', "").split(",")
        seeds = body.split("seed: [")[1].split("]")[0].split(",")
        for p in precs:
            w, a = p.strip().split("/")
            for s in seeds:
                out.append((width, int(w), int(a), int(s)))
    return out


def trial(width, wbits, abits, seed, epochs, batch, x, y, xt, yt):
    torch.manual_seed(seed)
    model, _, _ = make("resnet20", width, wbits, abits)
    model = model.cuda().to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    n = x.shape[0] // batch
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(x.shape[0], device="cuda")
        for i in range(n):
            idx = perm[i * batch:(i + 1) * batch]
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = F.cross_entropy(model(x[idx]).float(), y[idx])
            loss.backward()
            opt.step()
        model.eval()
        correct = 0
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            for i in range(0, xt.shape[0], 1000):
                correct += (model(xt[i:i + 1000]).argmax(1) == yt[i:i + 1000]).sum().item()
    return correct / xt.shape[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("spec")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--json")
    a = ap.parse_args()
    grid = cells(a.spec)
    x = torch.randn(60000, 1, 28, 28, device="cuda").to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (60000,), device="cuda")
    xt = torch.randn(10000, 1, 28, 28, device="cuda").to(memory_format=torch.channels_last)
    yt = torch.randint(0, 10, (10000,), device="cuda")
    print(f"PyTorch {torch.__version__} on {torch.cuda.get_device_name()}: {len(grid)} trials x "
          f"{a.epochs} epochs, one after another", flush=True)
    t0 = time.perf_counter()
    per = []
    for c in grid:
        s = time.perf_counter()
        trial(*c, a.epochs, a.batch, x, y, xt, yt)
        torch.cuda.synchronize()
        per.append(time.perf_counter() - s)
        print(f"  width {c[0]:g} {c[1]}/{c[2]} seed {c[3]}: {per[-1]:.1f} s", flush=True)
    total = time.perf_counter() - t0
    print(f"grid: {total:.1f} s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"torch": torch.__version__, "device": torch.cuda.get_device_name(),
                       "trials": len(grid), "epochs": a.epochs, "seconds": total,
                       "per_trial_seconds": per}, f, indent=2)


if __name__ == "__main__":
    main()
