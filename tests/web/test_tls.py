"""HTTPS for the page and /api/v1 (deploy/https/wrpn-https-proxy.sh: stunnel4 with the gRPC
certificate and key, since Debian's civetweb cannot do TLS with OpenSSL 3) and gRPC TLS with the
same certificate: a self-signed certificate for 127.0.0.1, a coordinator with --tls-cert/--tls-key,
the proxy in front of its HTTP port. Checks the page and the API over HTTPS (verified against the
certificate), that the HTTPS port does not speak plain HTTP, that a token is still required, the
Python client over gRPC TLS, and the page rendered by chromium over HTTPS."""
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python_client"))
import chromium  # noqa: E402
import wrpn  # noqa: E402
from wrpn_harness import ADMIN, VIEWER, Cluster, quick_spec  # noqa: E402

PROXY = os.path.join(os.environ["WRPN_SOURCE_DIR"], "deploy", "https", "wrpn-https-proxy.sh")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="wrpn-tls-")
        cls.cert, cls.key = os.path.join(cls.tmp, "cert.pem"), os.path.join(cls.tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", cls.key, "-out", cls.cert], check=True, capture_output=True)
        cls.cluster = Cluster(coordinator_args=["--tls-cert", cls.cert, "--tls-key", cls.key],
                              tls_ca=cls.cert)
        cls.cluster.start()
        cls.https_port = free_port()
        env = dict(os.environ, WRPN_HTTPS_ACCEPT=f"127.0.0.1:{cls.https_port}",
                   WRPN_HTTPS_CONNECT=f"127.0.0.1:{cls.cluster.http_port}",
                   WRPN_TLS_CERT=cls.cert, WRPN_TLS_KEY=cls.key,
                   WRPN_HTTPS_CONF=os.path.join(cls.tmp, "stunnel.conf"))
        cls.proxy_log = open(os.path.join(cls.tmp, "proxy.log"), "w")
        cls.proxy = subprocess.Popen(["sh", PROXY], env=env, stdout=cls.proxy_log,
                                     stderr=cls.proxy_log)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", cls.https_port), timeout=1).close()
                break
            except OSError:
                if cls.proxy.poll() is not None:
                    raise RuntimeError(open(os.path.join(cls.tmp, "proxy.log")).read())
                time.sleep(0.1)
        cls.ctx = ssl.create_default_context(cafile=cls.cert)

    @classmethod
    def tearDownClass(cls):
        cls.proxy.terminate()
        cls.proxy.wait(timeout=10)
        cls.proxy_log.close()
        cls.cluster.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def get(self, path, token=None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        req = urllib.request.Request(f"https://127.0.0.1:{self.https_port}{path}", headers=headers)
        return urllib.request.urlopen(req, context=self.ctx, timeout=10)

    def test_page_and_api_over_https(self):
        page = self.get("/").read().decode()
        self.assertIn('<script src="/app.js"></script>', page)
        with self.assertRaises(urllib.error.HTTPError) as e:
            self.get("/api/v1/sweeps")
        self.assertEqual(e.exception.code, 401)
        self.assertIn("sweeps", json.load(self.get("/api/v1/sweeps", VIEWER)))

    def test_https_port_refuses_plain_http_and_untrusted_clients(self):
        with self.assertRaises(Exception):
            urllib.request.urlopen(f"http://127.0.0.1:{self.https_port}/", timeout=5).read()
        with self.assertRaises(urllib.error.URLError):  # the system roots do not trust it
            urllib.request.urlopen(f"https://127.0.0.1:{self.https_port}/",
                                   context=ssl.create_default_context(), timeout=5)

    def test_grpc_tls_with_the_same_certificate_and_the_page_in_chromium(self):
        with wrpn.Client(addr=self.cluster.addr, token=ADMIN, tls_ca=self.cert, env={}) as c:
            sweep_id = c.submit(quick_spec("tls", widths=(1,), precisions=("32/32", "2/2"),
                                           epochs=2))
            c.wait(sweep_id)
            rows = c.grid(sweep_id).rows
        self.assertEqual(len(rows), 2)
        with self.assertRaises(wrpn.UnavailableError):  # plaintext gRPC is not served
            wrpn.Client(addr=self.cluster.addr, token=ADMIN, connect_timeout=0.5, env={}).sweeps()
        dom = chromium.dump_dom(f"https://127.0.0.1:{self.https_port}/#/sweep/{sweep_id}"
                                f"&token={VIEWER}")
        self.assertEqual(dom.count('data-wbits='), 2)  # the two cells, rendered over HTTPS
        self.assertIn('data-view="sweep"', dom)


if __name__ == "__main__":
    unittest.main(verbosity=2)
