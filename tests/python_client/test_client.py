"""The wrpn Python package (client/python), installed by pip into a fresh venv, against a real
coordinator and a fake-trainer worker: submit (dict, YAML text, path), sweeps, sweep, watch, grid
(and its agreement with the HTTP API), trial metrics, cancel, retry, settings from the environment
and the config file, and errors carrying the gRPC code and the coordinator's message."""
import json
import os
import pathlib
import sys
import tempfile
import unittest
import urllib.request

import grpc
import wrpn

sys.path.insert(0, os.path.dirname(__file__))
from wrpn_harness import ADMIN, VIEWER, Cluster, quick_spec  # noqa: E402


class ClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster().start()
        cls.admin = wrpn.Client(addr=cls.cluster.addr, token=ADMIN, env={})

    @classmethod
    def tearDownClass(cls):
        cls.admin.close()
        cls.cluster.stop()

    def test_installed_from_the_package_not_the_tree(self):
        self.assertIn("site-packages", wrpn.__file__)
        from wrpn.v1 import coordinator_pb2
        self.assertTrue(hasattr(coordinator_pb2, "GridCell"))

    def test_submit_watch_grid_metrics(self):
        sweep_id = self.admin.submit(quick_spec("py-watch"))
        self.assertGreater(sweep_id, 0)
        updates = list(self.admin.watch(sweep_id))
        self.assertIsNone(updates[0].event)
        self.assertEqual(updates[0].sweep.id, sweep_id)
        events = [u.event for u in updates[1:]]
        self.assertTrue(any(e.state == "RUNNING" for e in events), events)
        self.assertEqual(sum(1 for e in events if e.state == "SUCCEEDED"), 8)
        self.assertTrue(updates[-1].sweep.done)
        sweep = self.admin.sweep(sweep_id)
        self.assertEqual((sweep.state, sweep.counts.succeeded, sweep.counts.total),
                         ("SUCCEEDED", 8, 8))
        self.assertEqual(sweep.progress, 1.0)
        self.assertIn(sweep_id, [s.id for s in self.admin.sweeps()])
        self.assertIn(sweep_id, [s.id for s in self.admin.sweeps(state="succeeded")])

        grid = self.admin.grid(sweep_id)
        self.assertEqual(len(grid), 8)
        self.assertNotEqual(grid.paper_version, "")
        self.assertEqual(grid.baselines, {"alexnet": 57.2})
        base = grid.cell("lenet5", 1.0, 32, 32)
        for row in grid:
            self.assertEqual(row.state, "SUCCEEDED")
            self.assertEqual(row.scheme, "wrpn")
            self.assertEqual(row.cost_mode, "uniform")
            self.assertEqual(row.cost, row.raw.cost_uniform)
            self.assertTrue(60.0 <= row.top1 <= 90.0, row)  # the fake trainer's range
            self.assertEqual((row.seeds, row.seeds_done), (1, 1))
            self.assertAlmostEqual(row.our_delta, row.top1 - base.top1)
            self.assertEqual(row.bits, f"{row.wbits}/{row.abits}")
            # The coordinator compares lenet5 with the paper's AlexNet tables (by family).
            self.assertEqual(row.paper_network, "alexnet")
            self.assertEqual(row.paper_table, "table1" if row.width == 1 else "table2")
            self.assertIsNotNone(row.paper_top1, row)
            self.assertAlmostEqual(row.paper_delta, row.paper_top1 - 57.2)
        self.assertEqual(base.our_delta, 0.0)
        self.assertEqual((base.paper_top1, base.paper_delta), (57.2, 0.0))
        w44 = grid.cell("lenet5", 2.0, 4, 4)  # Table 2: 58.6 against Table 1's 57.2
        self.assertEqual(w44.paper_top1, 58.6)
        self.assertAlmostEqual(w44.paper_delta, 58.6 - 57.2)
        self.assertLess(grid.cell("lenet5", 1.0, 2, 2).cost, base.cost)
        fl = self.admin.grid(sweep_id, cost_mode="first-last-fp32")
        self.assertEqual([r.cost for r in fl], [r.raw.cost_first_last_fp32 for r in fl])
        with self.assertRaisesRegex(ValueError, "cost_mode"):
            self.admin.grid(sweep_id, cost_mode="fancy")
        r34 = self.admin.grid(sweep_id, paper_ref="table4").cell("lenet5", 2.0, 4, 4)
        self.assertEqual((r34.paper_network, r34.paper_table, r34.paper_top1),
                         ("resnet34", "table4", 74.52))
        self.assertAlmostEqual(r34.paper_delta, 74.52 - 73.59)
        self.assertIsNone(self.admin.grid(sweep_id, paper_ref="none").rows[0].paper_top1)
        with self.assertRaisesRegex(wrpn.InvalidArgumentError, "paper_ref: unknown reference"):
            self.admin.grid(sweep_id, paper_ref="vgg")

        # The HTTP API serves the same grid.
        req = urllib.request.Request(f"{self.cluster.http}/api/v1/sweeps/{sweep_id}/grid",
                                     headers={"Authorization": f"Bearer {VIEWER}"})
        cells = json.load(urllib.request.urlopen(req))["cells"]
        self.assertEqual(sorted((c["network"], c["width"], c["wbits"], c["abits"], c["final_top1"],
                                 c["our_delta"], c["paper_top1"], c["paper_delta"]) for c in cells),
                         sorted((r.network, r.width, r.wbits, r.abits, r.top1, r.our_delta,
                                 r.paper_top1, r.paper_delta) for r in grid))

        trials = self.admin.trials(sweep_id)
        self.assertEqual(len(trials), 8)
        series = self.admin.trial_metrics(base.trial_id)
        self.assertEqual([p.step for p in series["top1"]], [0, 1, 2, 3])
        self.assertIn("test_loss", series)
        self.assertEqual(list(self.admin.trial_metrics(base.trial_id, name="lr")), ["lr"])
        self.assertAlmostEqual(self.admin.trial(base.trial_id).final_top1, base.top1)
        try:
            import pandas  # noqa: F401
        except ImportError:
            with self.assertRaisesRegex(ImportError, "pandas"):
                grid.to_pandas()
        else:
            df = grid.to_pandas()
            self.assertEqual(len(df), 8)
            self.assertIn("paper_delta", df.columns)

    def test_submit_yaml_text_and_path_dry_run(self):
        text = ("name: py-yaml\ndataset: {kind: synthetic, train_size: 64, test_size: 64}\n"
                "axes:\n  network: lenet5\n  width: [1]\n  precision: ['32/32']\n"
                "recipe: {epochs: 1}\nresources: {gpus_per_node: 0}\n")
        self.assertEqual(self.admin.submit(text, dry_run=True), 0)
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(text)
        self.assertEqual(self.admin.submit(f.name, dry_run=True), 0)
        self.assertEqual(self.admin.submit(pathlib.Path(f.name), dry_run=True), 0)
        with self.assertRaises(FileNotFoundError):
            self.admin.submit("/nonexistent/spec.yaml")
        quick = os.path.join(os.environ["WRPN_SOURCE_DIR"], "examples", "sweeps",
                             "fashion-quick.yaml")
        self.assertEqual(self.admin.submit(quick, dry_run=True), 0)

    def test_cancel_and_retry(self):
        sweep_id = self.admin.submit(quick_spec("py-cancel", epochs=400))
        cancelled = self.admin.cancel(sweep_id)
        self.assertGreater(cancelled, 0)
        self.assertEqual(self.admin.sweep(sweep_id).state, "CANCELLED")
        self.assertEqual(self.admin.retry(sweep_id), cancelled)
        self.assertIn(self.admin.sweep(sweep_id).state, ("QUEUED", "RUNNING"))
        self.admin.cancel(sweep_id)

    def test_errors_carry_code_and_message(self):
        with self.assertRaises(wrpn.NotFoundError) as e:
            self.admin.sweep(987654)
        self.assertEqual(e.exception.code, grpc.StatusCode.NOT_FOUND)
        self.assertEqual(e.exception.code_name, "NOT_FOUND")
        self.assertIn("987654", e.exception.details)
        self.assertTrue(str(e.exception).startswith("get sweep 987654: NOT_FOUND: "))
        with self.assertRaises(wrpn.InvalidArgumentError) as e:
            self.admin.submit({"name": "bad", "axes": [{"network": ["nosuchnet"]}]})
        self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("nosuchnet", e.exception.details)
        viewer = wrpn.Client(addr=self.cluster.addr, token=VIEWER, env={})
        self.assertTrue(viewer.sweeps() is not None)
        with self.assertRaises(wrpn.AuthError) as e:
            viewer.submit(quick_spec("py-denied"))
        self.assertEqual(e.exception.code, grpc.StatusCode.PERMISSION_DENIED)
        with self.assertRaises(wrpn.AuthError) as e:
            wrpn.Client(addr=self.cluster.addr, token="wrong", env={}).sweeps()
        self.assertEqual(e.exception.code, grpc.StatusCode.UNAUTHENTICATED)
        with self.assertRaises(wrpn.UnavailableError) as e:
            wrpn.Client(addr="127.0.0.1:1", connect_timeout=0.3, env={}).sweeps()
        self.assertIn("127.0.0.1:1", str(e.exception))

    def test_settings_like_the_cli(self):
        d = tempfile.mkdtemp()
        cfg = os.path.join(d, "wrpn", "config.yaml")
        os.makedirs(os.path.dirname(cfg))
        with open(cfg, "w") as f:
            f.write(f"addr: {self.cluster.addr}\ntoken: {VIEWER}\n")
        c = wrpn.Client(env={"XDG_CONFIG_HOME": d})
        self.assertEqual((c.settings.addr, c.settings.token, c.settings.config_path),
                         (self.cluster.addr, VIEWER, cfg))
        c.sweeps()
        env = {"XDG_CONFIG_HOME": d, "WRPN_ADDR": "127.0.0.1:1", "WRPN_TOKEN": "t"}
        c = wrpn.Client(env=env)
        self.assertEqual((c.settings.addr, c.settings.addr_from, c.settings.token),
                         ("127.0.0.1:1", "WRPN_ADDR", "t"))
        c = wrpn.Client(addr="h", token="x", env=env)
        self.assertEqual((c.settings.addr, c.settings.token), ("h:7070", "x"))
        self.assertTrue(wrpn.Client(tls_ca="/ca.pem", env={}).settings.tls)
        with open(cfg, "w") as f:
            f.write("adress: x\n")
        with self.assertRaisesRegex(ValueError, "unknown key 'adress'"):
            wrpn.Client(env={"XDG_CONFIG_HOME": d})


if __name__ == "__main__":
    unittest.main(verbosity=2)
