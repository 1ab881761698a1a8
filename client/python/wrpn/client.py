"""wrpn.Client: the coordinator's Coordinator service from Python. A Client owns one gRPC channel,
opened on the first call; it may be shared between threads (grpc channels and stubs are
thread-safe). Every failed call raises a wrpn.WrpnError subclass with the gRPC code and the
coordinator's message."""
from __future__ import annotations

import json
import os
import pathlib
from typing import Any, Dict, Iterator, List, Mapping, Optional, Union

import grpc

from wrpn import errors, settings
from wrpn.types import (Grid, MetricPoint, Sweep, Trial, TrialEvent, WatchUpdate, _state,
                        check_cost_mode)
from wrpn.v1 import coordinator_pb2 as pb
from wrpn.v1 import coordinator_pb2_grpc as pb_grpc

_MAX_RECEIVE = 64 << 20  # common/grpc_limits.h: kGrpcMaxResponseBytes
_MAX_SEND = 16 << 20     # kGrpcMaxRequestBytes

SpecSource = Union[str, os.PathLike, Mapping[str, Any]]


def _spec_text(spec: SpecSource) -> str:
    """A spec as the text SubmitSweep parses: a path (str or Path), YAML/JSON text, or a dict."""
    if isinstance(spec, Mapping):
        return json.dumps(spec)
    if isinstance(spec, os.PathLike):
        return pathlib.Path(spec).read_text(encoding="utf-8")
    if not isinstance(spec, str):
        raise TypeError(f"spec: expected a path, YAML text or a dict, got {type(spec).__name__}")
    if "\n" not in spec and (os.path.isfile(spec) or spec.endswith((".yaml", ".yml", ".json"))):
        return pathlib.Path(spec).read_text(encoding="utf-8")  # FileNotFoundError names it
    return spec


class Client:
    """Client(addr=..., token=..., tls_ca=...): arguments left out come from WRPN_ADDR,
    WRPN_TOKEN, WRPN_TLS_CA and the CLI's config file, as for the `wrpn` CLI. `timeout` is each
    call's deadline in seconds (watch() has none)."""

    def __init__(self, addr: Optional[str] = None, token: Optional[str] = None,
                 tls_ca: Optional[str] = None, *, tls: Optional[bool] = None,
                 config: Optional[str] = None, connect_timeout: Optional[float] = None,
                 timeout: float = 30.0, env: Optional[Mapping[str, str]] = None):
        self.settings = settings.resolve(addr, token, tls_ca, tls, config, connect_timeout, env)
        self.timeout = timeout
        self._channel: Optional[grpc.Channel] = None
        self._stub: Optional[pb_grpc.CoordinatorStub] = None

    # ---- connection ----
    def _connect(self) -> pb_grpc.CoordinatorStub:
        if self._stub is not None:
            return self._stub
        s = self.settings
        options = [("grpc.max_receive_message_length", _MAX_RECEIVE),
                   ("grpc.max_send_message_length", _MAX_SEND),
                   ("grpc.initial_reconnect_backoff_ms", 200),
                   ("grpc.max_reconnect_backoff_ms", 1000)]
        if s.tls:
            roots = None
            if s.tls_ca:
                try:
                    roots = pathlib.Path(s.tls_ca).read_bytes()
                except OSError as e:
                    raise FileNotFoundError(f"cannot read TLS CA file '{s.tls_ca}': {e}") from None
            channel = grpc.secure_channel(s.addr, grpc.ssl_channel_credentials(roots), options)
        else:
            channel = grpc.insecure_channel(s.addr, options)
        try:
            grpc.channel_ready_future(channel).result(timeout=s.connect_timeout)
        except grpc.FutureTimeoutError:
            channel.close()
            raise errors.UnavailableError(
                grpc.StatusCode.UNAVAILABLE,
                f"cannot reach the coordinator at {s.addr} (address from {s.addr_from}) within "
                f"{s.connect_timeout:g} s; is wrpn-coordinator running there? Set addr= or "
                "WRPN_ADDR", "connect") from None
        self._channel = channel
        self._stub = pb_grpc.CoordinatorStub(channel)
        return self._stub

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._channel = self._stub = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _metadata(self):
        return [("authorization", f"Bearer {self.settings.token}")] if self.settings.token else []

    def _call(self, method: str, request, what: str):
        stub = self._connect()
        try:
            return getattr(stub, method)(request, timeout=self.timeout, metadata=self._metadata())
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e, what) from None

    # ---- sweeps ----
    def submit(self, spec: SpecSource, *, dry_run: bool = False) -> int:
        """Submits a sweep spec (a path, YAML/JSON text or a dict); returns the sweep id (0 for a
        dry run, which only validates)."""
        req = pb.SubmitSweepRequest(spec_text=_spec_text(spec), dry_run=dry_run)
        return self._call("SubmitSweep", req, "submit sweep").sweep_id

    def sweeps(self, state: Optional[str] = None) -> List[Sweep]:
        """Every sweep, newest first as the coordinator lists them; `state` filters ("RUNNING")."""
        out, token = [], ""
        state_value = pb.SweepState.Value(f"SWEEP_{state.upper()}") if state else 0
        while True:
            resp = self._call("ListSweeps", pb.ListSweepsRequest(page_size=1000, page_token=token,
                                                                  state=state_value), "list sweeps")
            out += [Sweep.from_pb(s) for s in resp.sweeps]
            token = resp.next_page_token
            if not token:
                return out

    def sweep(self, sweep_id: int) -> Sweep:
        return Sweep.from_pb(self._call("GetSweep", pb.GetSweepRequest(sweep_id=sweep_id),
                                        f"get sweep {sweep_id}").sweep)

    def watch(self, sweep_id: int) -> Iterator[WatchUpdate]:
        """Yields the sweep as it is now, then one update per trial state change, until the sweep
        is finished or cancelled."""
        stub = self._connect()
        what = f"watch sweep {sweep_id}"
        try:
            for m in stub.WatchSweep(pb.WatchSweepRequest(sweep_id=sweep_id),
                                     metadata=self._metadata()):
                ev = None
                if m.HasField("event"):
                    e = m.event
                    ev = TrialEvent(e.seq, e.trial_id, _state(pb.TrialState, e.state), e.attempt,
                                    e.message, e.time_ms)
                yield WatchUpdate(Sweep.from_pb(m.sweep), ev)
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e, what) from None

    def wait(self, sweep_id: int) -> Sweep:
        """Blocks until the sweep is finished or cancelled; returns it."""
        for _ in self.watch(sweep_id):
            pass
        return self.sweep(sweep_id)

    def cancel(self, sweep_id: int) -> int:
        """Cancels the sweep's unfinished trials; returns how many."""
        return self._call("CancelSweep", pb.CancelSweepRequest(sweep_id=sweep_id),
                          f"cancel sweep {sweep_id}").cancelled_trials

    def retry(self, sweep_id: int, pruned: bool = False) -> int:
        """Re-queues the sweep's failed and cancelled trials (with `pruned`, also resumes a
        Pareto-pruned sweep's pruned trials to the end); returns how many."""
        return self._call("RetrySweep", pb.RetrySweepRequest(sweep_id=sweep_id, pruned=pruned),
                          f"retry sweep {sweep_id}").requeued_trials

    # ---- results ----
    def grid(self, sweep_id: int, cost_mode: str = "uniform", paper_ref: str = "auto") -> Grid:
        """The sweep's grid: one row per (network, width, wbits, abits, scheme) with the paper's
        value and both changes from 1x 32/32 as the coordinator joins them. `cost_mode` picks the
        cost column (uniform or first-last-fp32); `paper_ref` the paper network compared with:
        auto (by family), none, alexnet, resnet34, inception_bn or table1..table5 (as
        `wrpn grid --paper-ref`)."""
        check_cost_mode(cost_mode)
        resp = self._call("GetGrid", pb.GetGridRequest(sweep_id=sweep_id, paper_ref=paper_ref),
                          f"grid of sweep {sweep_id}")
        return Grid.from_pb(resp, cost_mode)

    def trials(self, sweep_id: int, state: Optional[str] = None) -> List[Trial]:
        out, token = [], ""
        state_value = pb.TrialState.Value(f"TRIAL_{state.upper()}") if state else 0
        while True:
            resp = self._call("ListTrials", pb.ListTrialsRequest(
                sweep_id=sweep_id, page_size=1000, page_token=token, state=state_value),
                f"trials of sweep {sweep_id}")
            out += [Trial.from_pb(t) for t in resp.trials]
            token = resp.next_page_token
            if not token:
                return out

    def trial(self, trial_id: int) -> Trial:
        return Trial.from_pb(self._call("GetTrial", pb.GetTrialRequest(trial_id=trial_id),
                                        f"get trial {trial_id}").trial)

    def trial_metrics(self, trial_id: int, name: str = "") -> Dict[str, List[MetricPoint]]:
        """The trial's metric series by name (top1, test_loss, train_loss, lr, ...), each in step
        order; `name` asks for one."""
        resp = self._call("GetTrialMetrics", pb.GetTrialMetricsRequest(trial_id=trial_id, name=name),
                          f"metrics of trial {trial_id}")
        series: Dict[str, List[MetricPoint]] = {}
        for p in resp.points:
            series.setdefault(p.name, []).append(MetricPoint(p.name, p.step, p.value, p.wall_ms))
        for points in series.values():
            points.sort(key=lambda p: p.step)
        return series

    def workers(self) -> List[pb.Worker]:
        return list(self._call("ListWorkers", pb.ListWorkersRequest(), "list workers").workers)
