"""The coordinator's web page in a real browser (Debian's chromium, headless): a coordinator
holding a finished sweep (and one still running), the page loaded with a viewer token; the grid's
cells must equal the API's values, the Pareto plot must have one point per cell, the learning
curves one point per metric value, and a page without a token (or with a wrong one) must show the
login prompt and no data. Screenshots go to $WRPN_SCREENSHOT_DIR (default: the build folder);
WRPN_UPDATE_SCREENSHOTS=1 writes them to docs/images/ instead, for README.md."""
import html.parser
import json
import os
import sys
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python_client"))
import chromium  # noqa: E402
import wrpn  # noqa: E402
from wrpn_harness import ADMIN, VIEWER, Cluster  # noqa: E402

SPEC = {"name": "lenet5-width-x-bits",
        "dataset": {"kind": "synthetic", "train_size": 64, "test_size": 64},
        "axes": [{"network": ["lenet5"], "width": [1, 2], "wbits": [32, 4, 2], "abits": [32, 4, 2],
                  "seed": [0, 1]}],
        "recipe": {"epochs": 6, "batch_size": 32, "schedule": "constant"},
        "resources": {"gpus_per_node": 0, "nodes": 1}, "max_attempts": 2}


class Dom(html.parser.HTMLParser):
    """Collects the elements the tests look at, with their attributes and text."""

    def __init__(self, text):
        super().__init__()
        self.cells, self.points, self.curves, self.stack = [], [], [], []
        self.attrs_by_id, self.text = {}, []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if "id" in a:
            self.attrs_by_id[a["id"]] = a
        if tag == "td" and "cell" in classes and "data-network" in a:
            self.cells.append(dict(a, text=""))
            self.stack.append(("cell", len(self.cells) - 1))
        elif tag == "circle" and "pt" in classes:
            self.points.append(a)
        elif tag == "polyline" and "curve" in classes:
            self.curves.append(a)
        elif tag == "div" and self.stack and self.stack[-1][0] == "cell":
            # Inside a cell: the top-1, then "our change [the paper's change]", then the cost.
            part = ("text" if "top1" in classes else
                    "deltas" if "deltas" in classes and "muted" not in classes else "other")
            self.cells[self.stack[-1][1]].setdefault(part, "")
            self.stack.append((part, self.stack[-1][1]))

    def handle_endtag(self, tag):
        if self.stack and ((tag == "div" and self.stack[-1][0] != "cell") or
                           (tag == "td" and self.stack[-1][0] == "cell")):
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)
        if self.stack and self.stack[-1][0] != "cell":
            self.cells[self.stack[-1][1]][self.stack[-1][0]] += data


def key(network, width, wbits, abits, scheme):
    return f"{network}|{float(width):g}|{wbits}|{abits}|{scheme}"


def signed(v):
    """As the page prints a change: +1.25, −0.40 (U+2212), – when there is none."""
    if v is None:
        return "–"
    return ("+" if v >= 0 else "−") + f"{abs(v):.2f}"


class WebPageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster().start()
        cls.client = wrpn.Client(addr=cls.cluster.addr, token=ADMIN, env={})
        cls.sweep_id = cls.client.submit(SPEC)
        cls.client.wait(cls.sweep_id)
        # A second sweep left running, for "live progress" on the sweeps page.
        running = dict(SPEC, name="still-running", recipe=dict(SPEC["recipe"], epochs=100000))
        cls.running_id = cls.client.submit(running)
        for u in cls.client.watch(cls.running_id):
            if u.sweep.counts.running > 0:
                break
        cls.shots = (os.path.join(os.environ["WRPN_SOURCE_DIR"], "docs", "images")
                     if os.environ.get("WRPN_UPDATE_SCREENSHOTS") == "1"
                     else os.environ.get("WRPN_SCREENSHOT_DIR", os.getcwd()))

    @classmethod
    def tearDownClass(cls):
        cls.client.cancel(cls.running_id)
        cls.client.close()
        cls.cluster.stop()

    def api(self, path):
        req = urllib.request.Request(self.cluster.http + "/api/v1" + path,
                                     headers={"Authorization": f"Bearer {VIEWER}"})
        return json.load(urllib.request.urlopen(req))

    def page(self, fragment, token=VIEWER):
        return f"{self.cluster.http}/#{fragment}" + (f"&token={token}" if token else "")

    def test_grid_cells_equal_the_api_and_one_plot_point_per_cell(self):
        dom = Dom(chromium.dump_dom(self.page(f"/sweep/{self.sweep_id}")))
        self.assertEqual(dom.attrs_by_id["main"].get("data-view"), "sweep")
        self.assertEqual(dom.attrs_by_id["main"].get("data-ready"), "1")
        self.assertIn("hidden", dom.attrs_by_id["login"])
        api_cells = self.api(f"/sweeps/{self.sweep_id}/grid")["cells"]
        self.assertEqual(len(api_cells), 18)
        by_key = {key(c["network"], c["width"], c["wbits"], c["abits"], c["scheme"]): c
                  for c in api_cells}
        page_cells = {key(c["data-network"], c["data-width"], c["data-wbits"], c["data-abits"],
                          c["data-scheme"]): c for c in dom.cells}
        self.assertEqual(set(page_cells), set(by_key))
        with_paper = 0
        for k, c in by_key.items():
            shown = page_cells[k]
            self.assertEqual(c["scheme"], "wrpn")
            self.assertEqual(c["paper_network"], "alexnet", k)  # lenet5's reference, by family
            self.assertEqual(float(shown["data-top1"]), c["final_top1"], k)
            self.assertEqual(shown["text"].strip(), f"{c['final_top1']:.2f}", k)
            # Both changes are the coordinator's numbers, shown as they are.
            self.assertEqual(float(shown["data-our-delta"]), c["our_delta"], k)
            paper_delta = c.get("paper_delta")
            if paper_delta is None:
                self.assertEqual(shown["data-paper-delta"], "", k)
                self.assertNotIn("paper_top1", c, k)
            else:
                with_paper += 1
                self.assertEqual(float(shown["data-paper-delta"]), paper_delta, k)
                self.assertEqual(float(shown["data-paper-top1"]), c["paper_top1"], k)
            self.assertEqual(" ".join(shown["deltas"].split()),
                             f"{signed(c['our_delta'])} [{signed(paper_delta)}]", k)
        # AlexNet's Tables 1 and 2 have 15 of these 18 (width, bits): not w4/a32 (1x, 2x), w2/a32 (2x).
        self.assertEqual(with_paper, 15)
        # The paper's layout: one table per (network, width), rows = weight bits.
        self.assertEqual(len(dom.points), len(api_cells))
        self.assertEqual(sorted(p["data-key"] for p in dom.points), sorted(by_key))
        trials = self.api(f"/sweeps/{self.sweep_id}/trials?page_size=1000")["trials"]
        self.assertEqual(len(trials), 36)
        chromium.screenshot(self.page(f"/sweep/{self.sweep_id}"),
                            os.path.join(self.shots, "web-sweep.png"), height=1500)

    def test_sweeps_and_workers_with_live_progress(self):
        dom = Dom(chromium.dump_dom(self.page("/")))
        self.assertEqual(dom.attrs_by_id["main"].get("data-view"), "home")
        text = " ".join(dom.text)
        self.assertIn("lenet5-width-x-bits", text)
        self.assertIn("36/36 done", text)
        self.assertIn("still-running", text)
        self.assertRegex(text, r"\d+/36 done, [12] running")
        self.assertIn("py-worker-0", text)
        self.assertIn("refreshing every 3 s", text)  # something runs: the page refreshes itself
        chromium.screenshot(self.page("/"), os.path.join(self.shots, "web-sweeps.png"), height=700)

    def test_learning_curves(self):
        trial_id = self.api(f"/sweeps/{self.sweep_id}/grid")["cells"][0]["trial_id"]
        dom = Dom(chromium.dump_dom(self.page(f"/trial/{trial_id}")))
        self.assertEqual(dom.attrs_by_id["main"].get("data-view"), "trial")
        points = self.api(f"/trials/{trial_id}/metrics")["points"]
        names = sorted({p["name"] for p in points})
        self.assertEqual(sorted(c["data-metric"] for c in dom.curves), names)
        for c in dom.curves:
            n = sum(1 for p in points if p["name"] == c["data-metric"])
            self.assertEqual(len(c["points"].split()), n, c["data-metric"])
        self.assertIn("top1", names)
        chromium.screenshot(self.page(f"/trial/{trial_id}"),
                            os.path.join(self.shots, "web-trial.png"), height=1000)

    def test_no_token_shows_the_login_prompt_not_data(self):
        for token, error in ((None, ""), ("not-a-valid-token-at-all", "refused")):
            dom = Dom(chromium.dump_dom(self.page(f"/sweep/{self.sweep_id}", token=token)))
            self.assertEqual(dom.attrs_by_id["main"].get("data-view"), "login")
            self.assertNotIn("hidden", dom.attrs_by_id["login"])
            self.assertEqual(dom.cells, [])
            self.assertEqual(dom.points, [])
            text = " ".join(dom.text)
            self.assertIn("Sign in", text)
            self.assertNotIn("lenet5", text)
            if error:
                self.assertIn(error, text)
        chromium.screenshot(self.page("/", token=None), os.path.join(self.shots, "web-login.png"),
                            height=500)


if __name__ == "__main__":
    unittest.main(verbosity=2)
