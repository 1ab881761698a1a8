"""A real wrpn-coordinator and a wrpn-worker running the fake trainer (tests/chaos/fake_trainer.cc)
as child processes, for the Python client's and the web page's tests. Paths of the binaries come
from the environment ctest sets: WRPN_COORDINATOR, WRPN_WORKER, WRPN_FAKE_TRAIN, WRPN_SOURCE_DIR.
Ports are picked by the coordinator (127.0.0.1:0) and read from its startup line."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

ADMIN, VIEWER, WORKER = "admin-token-python-0001", "viewer-token-python-0001", "worker-token-python-0001"


def quick_spec(name="py-quick", widths=(1, 2), precisions=("32/32", "4/4", "2/4", "2/2"),
               epochs=4, seeds=(0,)):
    return {"name": name,
            "dataset": {"kind": "synthetic", "train_size": 64, "test_size": 64},
            "axes": [{"network": ["lenet5"], "width": list(widths),
                      "precision": list(precisions), "seed": list(seeds)}],
            "recipe": {"epochs": epochs, "batch_size": 32, "schedule": "constant"},
            "resources": {"gpus_per_node": 0, "nodes": 1},
            "max_attempts": 2}


class Cluster:
    def __init__(self, tokens=True, coordinator_args=(), tls_ca=None):
        self.dir = tempfile.mkdtemp(prefix="wrpn-pytest-")
        self.tokens = tokens
        self.coordinator_args = list(coordinator_args)
        self.tls_ca = tls_ca  # workers trust this CA: the coordinator serves gRPC over TLS
        self.procs, self.logs = [], []
        self.grpc_port = self.http_port = 0

    @property
    def addr(self):
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http(self):
        return f"http://127.0.0.1:{self.http_port}"

    def _path(self, name):
        return os.path.join(self.dir, name)

    def start(self, workers=1):
        args = [os.environ["WRPN_COORDINATOR"], "--db", self._path("wrpn.db"),
                "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
                "--event-retention-days", "0", "--retry-backoff", "0",
                "--paper-tables", os.path.join(os.environ["WRPN_SOURCE_DIR"], "data",
                                               "wrpn_tables.json")]
        if self.tokens:
            with open(self._path("tokens"), "w") as f:
                f.write(f"admin {ADMIN}\nviewer {VIEWER}\nworker {WORKER}\n")
            args += ["--token-file", self._path("tokens")]
        log = open(self._path("coordinator.log"), "w")
        self.logs.append(log)
        self.procs.append(subprocess.Popen(args + self.coordinator_args, stderr=log,
                                           stdout=log))
        deadline = time.time() + 20
        while time.time() < deadline:
            text = self.log()
            m = re.search(r"\(port (\d+)\), HTTP on port (\d+)", text)
            if m:
                self.grpc_port, self.http_port = int(m.group(1)), int(m.group(2))
                break
            if self.procs[0].poll() is not None:
                raise RuntimeError("wrpn-coordinator exited:\n" + text)
            time.sleep(0.05)
        else:
            raise RuntimeError("wrpn-coordinator did not start:\n" + text)
        for i in range(workers):
            self.start_worker(f"py-worker-{i}")
        return self

    def start_worker(self, name):
        with open(self._path("worker.token"), "w") as f:
            f.write(WORKER + "\n")
        args = [os.environ["WRPN_WORKER"], "--coordinator", self.addr,
                "--name", name, "--address", "127.0.0.1", "--gpus", "none", "--cpus", "2",
                "--max-cpu-trials", "2", "--trainer", os.environ["WRPN_FAKE_TRAIN"],
                "--work-dir", self._path(name), "--checkpoint-dir", self._path("checkpoints"),
                "--grace", "2", "--metrics-interval", "0.1", "--acquire-interval", "0.1",
                "--poll-interval", "0.05"]
        if self.tokens:
            args += ["--token-file", self._path("worker.token")]
        if self.tls_ca:
            args += ["--tls-ca", self.tls_ca]
        env = dict(os.environ, WRPN_FAKE_EPOCH_MS=os.environ.get("WRPN_FAKE_EPOCH_MS", "40"))
        log = open(self._path(f"{name}.log"), "w")
        self.logs.append(log)
        self.procs.append(subprocess.Popen(args, stderr=log, stdout=log, env=env))

    def log(self):
        with open(self._path("coordinator.log")) as f:
            return f.read()

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []
        for log in self.logs:
            log.close()
        self.logs = []
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is not None:
            print("---- coordinator log ----\n" + self.log())
        self.stop()
