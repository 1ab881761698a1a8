"""Runs an example script (argv[1]) against a real coordinator and fake-trainer worker, with the
coordinator given the way a user gives it (WRPN_ADDR, WRPN_TOKEN), and checks its output."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from wrpn_harness import ADMIN, Cluster  # noqa: E402

with Cluster().start() as cluster:
    env = dict(os.environ, WRPN_ADDR=cluster.addr, WRPN_TOKEN=ADMIN, HOME=cluster.dir)
    out = subprocess.run([sys.executable, sys.argv[1]], env=env, capture_output=True, text=True,
                         timeout=120)
    print(out.stdout, out.stderr)
    assert out.returncode == 0, out.returncode
    assert "sweep 1: succeeded" in out.stdout, out.stdout
    rows = [line for line in out.stdout.splitlines() if line.startswith("lenet5 ")]
    assert len(rows) == 8, rows  # 2 widths x 4 precisions
    assert any(line.startswith("lenet5 1x w32/a32") and "+0.00" in line for line in rows), rows
print("ok")
