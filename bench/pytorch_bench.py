"""PyTorch (Python, eager) reference for bench/train_bench: the same pre-activation ResNets and the
same WRPN quantizers (clamp + fake_quantize, adaptive per-layer weight scale), trained with SGD
with momentum, bf16 autocast and channels-last on synthetic data already on the GPU. Prints the
median images/s of timed steps after warm-up, per configuration, and writes JSON with --json.

Usage: python3 bench/pytorch_bench.py [--steps 20] [--warmup 5] [--json FILE] [--no-amp]
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def wlevels(k):
    return 2 ** (k - 1) - 1


class QConv(nn.Conv2d):
    def __init__(self, cin, cout, k, stride, pad, wbits):
        super().__init__(cin, cout, k, stride, pad, bias=False)
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        self.wbits = wbits

    def forward(self, x):
        w = self.weight
        if self.wbits != 32:
            d = w.detach()
            n = wlevels(self.wbits)
            s = torch.minimum(d.abs().amax(), d.abs().mean() * 1.4 * n).clamp_min(1e-30)
            w = torch.fake_quantize_per_tensor_affine(
                torch.clamp(w, -s, s), (s / n).float().reshape(1),
                torch.zeros(1, dtype=torch.int32, device=w.device), -n, n)
        return F.conv2d(x, w, None, self.stride, self.padding)


class QAct(nn.Module):
    def __init__(self, bits):
        super().__init__()
        self.bits = bits

    def forward(self, x):
        if self.bits == 32:
            return F.relu(x)
        m = 2 ** self.bits - 1
        return torch.fake_quantize_per_tensor_affine(torch.clamp(x, 0, 1), 1.0 / m, 0, 0, m)


class Block(nn.Module):
    def __init__(self, cin, cout, stride, wbits, abits, first_act):
        super().__init__()
        self.bn1, self.act1 = nn.BatchNorm2d(cin), QAct(first_act)
        self.conv1 = QConv(cin, cout, 3, stride, 1, wbits)
        self.bn2, self.act2 = nn.BatchNorm2d(cout), QAct(abits)
        self.conv2 = QConv(cout, cout, 3, 1, 1, wbits)
        self.short = QConv(cin, cout, 1, stride, 0, wbits) if stride != 1 or cin != cout else None

    def forward(self, x):
        o = self.act1(self.bn1(x))
        sc = self.short(o) if self.short is not None else x
        return self.conv2(self.act2(self.bn2(self.conv1(o)))) + sc


class PreActResNet(nn.Module):
    def __init__(self, imagenet, blocks, base, width, wbits, abits, in_ch, classes):
        super().__init__()
        ch = [round(c * width) for c in base]
        layers = []
        if imagenet:
            layers += [QConv(in_ch, ch[0], 7, 2, 3, 32), nn.BatchNorm2d(ch[0]), QAct(32),
                       nn.MaxPool2d(3, 2, 1)]
        else:
            layers += [QConv(in_ch, ch[0], 3, 1, 1, 32)]
        cin = ch[0]
        for s, (n, c) in enumerate(zip(blocks, ch)):
            for i in range(n):
                first = 32 if (not imagenet and s == 0 and i == 0) else abits
                layers.append(Block(cin, c, 2 if (s > 0 and i == 0) else 1, wbits, abits, first))
                cin = c
        layers += [nn.BatchNorm2d(cin), QAct(32), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                   nn.Linear(cin, classes)]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)


def make(net, width, wbits, abits):
    if net == "resnet34":
        return PreActResNet(True, [3, 4, 6, 3], [64, 128, 256, 512], width, wbits, abits, 3, 1000), (3, 224, 224), 1000
    return PreActResNet(False, [3, 3, 3], [16, 32, 64], width, wbits, abits, 1, 10), (1, 28, 28), 10


def bench(net, width, wbits, abits, batch, steps, warmup, amp):
    torch.manual_seed(0)
    model, shape, classes = make(net, width, wbits, abits)
    model = model.cuda().to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x = torch.randn(batch, *shape, device="cuda").to(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (batch,), device="cuda")
    times = []
    for i in range(warmup + steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            out = model(x)
        loss = F.cross_entropy(out.float(), y)
        loss.backward()
        opt.step()
        torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return batch / statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--json")
    ap.add_argument("--no-amp", action="store_true")
    a = ap.parse_args()
    configs = [("resnet34", 128, "1x 32/32", 1, 32, 32), ("resnet34", 128, "2x 32/32", 2, 32, 32),
               ("resnet34", 128, "2x W2A4", 2, 2, 4), ("resnet20", 256, "1x 32/32", 1, 32, 32),
               ("resnet20", 256, "2x 32/32", 2, 32, 32), ("resnet20", 256, "2x W2A4", 2, 2, 4)]
    print(f"PyTorch {torch.__version__} on {torch.cuda.get_device_name()}, bf16 autocast {not a.no_amp}, channels-last")
    out = []
    for net, batch, label, w, wb, ab in configs:
        ips = bench(net, w, wb, ab, batch, a.steps, a.warmup, not a.no_amp)
        print(f"  {net:9s} batch {batch:4d} {label:9s} {ips:10.1f} images/s", flush=True)
        out.append({"network": net, "batch": batch, "config": label, "images_per_sec": ips})
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"torch": torch.__version__, "device": torch.cuda.get_device_name(),
                       "amp": not a.no_amp, "results": out}, f, indent=2)


if __name__ == "__main__":
    main()
