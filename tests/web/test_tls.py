"""HTTPS on the coordinator's own HTTP port (server/https_front.h): a test CA made with the openssl
tool, a certificate it signed for 127.0.0.1, a real coordinator given that certificate and key
with --tls-cert/--tls-key (the gRPC options: one setting turns on TLS for both ports) and tokens.
Checks /api/v1 and the page over verified HTTPS with curl --cacert and Python's ssl, that a token
is still required, that plain HTTP to the port is refused with a 400 and no data, that a client
without the CA refuses the certificate, that a bad key path stops start-up naming it, the Python
client over gRPC TLS with the same certificate, and the page rendered by chromium over HTTPS."""
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python_client"))
import chromium  # noqa: E402
import wrpn  # noqa: E402
from wrpn_harness import ADMIN, VIEWER, Cluster, quick_spec  # noqa: E402

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def make_pki(d):
    """ca.pem, and cert.pem + key.pem signed by it for IP 127.0.0.1."""
    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    openssl("req", "-x509", *EC, "-days", "2", "-subj", "/CN=wrpn-test-ca",
            "-keyout", "ca.key", "-out", "ca.pem")
    openssl("req", *EC, "-subj", "/CN=127.0.0.1", "-keyout", "key.pem", "-out", "cert.csr")
    openssl("x509", "-req", "-in", "cert.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "cert.pem")
    return [os.path.join(d, n) for n in ("ca.pem", "cert.pem", "key.pem")]


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="wrpn-tls-")
        cls.ca, cls.cert, cls.key = make_pki(cls.tmp)
        cls.cluster = Cluster(coordinator_args=["--tls-cert", cls.cert, "--tls-key", cls.key],
                              tls_ca=cls.ca)
        cls.cluster.start()
        cls.base = f"https://127.0.0.1:{cls.cluster.http_port}"
        cls.ctx = ssl.create_default_context(cafile=cls.ca)

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def get(self, path, token=None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        req = urllib.request.Request(self.base + path, headers=headers)
        return urllib.request.urlopen(req, context=self.ctx, timeout=10)

    def curl(self, path, *args):
        out = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", self.ca,
                              "-w", "\n%{http_code}", *args, self.base + path],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        body, _, code = out.stdout.rpartition("\n")
        return int(code), body

    def test_api_and_page_over_verified_https(self):
        self.assertIn("HTTPS only", self.cluster.log())
        code, body = self.curl("/api/v1/sweeps", "-H", f"Authorization: Bearer {VIEWER}")
        self.assertEqual(code, 200, body)
        self.assertIn("sweeps", json.loads(body))
        code, body = self.curl("/api/v1/sweeps")
        self.assertEqual(code, 401, body)
        self.assertEqual(self.curl("/readyz")[0], 200)
        self.assertIn('<script src="/app.js"></script>', self.get("/").read().decode())
        self.assertIn("sweeps", json.load(self.get("/api/v1/sweeps", VIEWER)))

    def test_plain_http_is_refused_and_untrusted_clients_refuse(self):
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(
                urllib.request.Request(f"http://127.0.0.1:{self.cluster.http_port}/api/v1/sweeps",
                                       headers={"Authorization": f"Bearer {VIEWER}"}), timeout=5)
        self.assertEqual(e.exception.code, 400)
        body = e.exception.read().decode()
        self.assertIn("HTTPS only", body)
        self.assertNotIn("sweeps", body)
        with self.assertRaises(urllib.error.URLError):  # the system roots do not trust the CA
            urllib.request.urlopen(self.base + "/", context=ssl.create_default_context(),
                                   timeout=5)

    def test_a_bad_key_path_stops_startup_naming_it(self):
        missing = os.path.join(self.tmp, "no-such.key")
        out = subprocess.run([os.environ["WRPN_COORDINATOR"], "--db", ":memory:",
                              "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
                              "--tls-cert", self.cert, "--tls-key", missing],
                             capture_output=True, text=True, timeout=30)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn(f"--tls-key: cannot read '{missing}'", out.stderr)
        out = subprocess.run([os.environ["WRPN_COORDINATOR"], "--db", ":memory:",
                              "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
                              "--tls-cert", self.cert, "--tls-key", self.ca],
                             capture_output=True, text=True, timeout=30)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn(f"--tls-key: '{self.ca}' is not an unencrypted PEM private key",
                      out.stderr)

    def test_grpc_tls_with_the_same_certificate_and_the_page_in_chromium(self):
        with wrpn.Client(addr=self.cluster.addr, token=ADMIN, tls_ca=self.ca, env={}) as c:
            sweep_id = c.submit(quick_spec("tls", widths=(1,), precisions=("32/32", "2/2"),
                                           epochs=2))
            c.wait(sweep_id)
            rows = c.grid(sweep_id).rows
        self.assertEqual(len(rows), 2)
        with self.assertRaises(wrpn.UnavailableError):  # plaintext gRPC is not served
            wrpn.Client(addr=self.cluster.addr, token=ADMIN, connect_timeout=0.5, env={}).sweeps()
        dom = chromium.dump_dom(f"{self.base}/#/sweep/{sweep_id}&token={VIEWER}")
        self.assertEqual(dom.count('data-wbits='), 2)  # the two cells, rendered over HTTPS
        self.assertIn('data-view="sweep"', dom)


if __name__ == "__main__":
    unittest.main(verbosity=2)
