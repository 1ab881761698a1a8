"""Plain, typed views of the coordinator's answers. Each keeps the protobuf message it was made
from in `raw` for anything not copied out. States are short names: "QUEUED", "RUNNING",
"SUCCEEDED", "FAILED", "CANCELLED", "PRUNED"."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Iterator, List, Optional

from wrpn.v1 import coordinator_pb2 as pb

COST_MODES = ("uniform", "first-last-fp32")


def check_cost_mode(cost_mode: str) -> None:
    if cost_mode not in COST_MODES:
        raise ValueError(f"cost_mode: expected one of {', '.join(COST_MODES)}, got '{cost_mode}'")


def _state(enum_type, value: int) -> str:
    name = enum_type.Name(value)
    return name.split("_", 1)[1] if "_" in name else name


def _opt(msg, field: str) -> Optional[Any]:
    """The field's value; None when unset (a field without presence: when it has its default)."""
    try:
        return getattr(msg, field) if msg.HasField(field) else None
    except ValueError:  # a field without presence: unset reads as its default
        value = getattr(msg, field)
        return value if value != msg.DESCRIPTOR.fields_by_name[field].default_value else None


@dataclasses.dataclass
class Counts:
    queued: int
    running: int
    succeeded: int
    failed: int
    cancelled: int
    total: int
    pruned: int = 0  # trials a Pareto-pruned sweep ended at a rung

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed + self.cancelled + self.pruned


@dataclasses.dataclass
class Sweep:
    id: int
    name: str
    state: str
    priority: int
    max_attempts: int
    created_ms: int
    counts: Counts
    raw: pb.Sweep = dataclasses.field(repr=False)

    @property
    def done(self) -> bool:
        return self.state in ("SUCCEEDED", "FAILED", "CANCELLED", "PRUNED")

    @property
    def progress(self) -> float:
        """Finished trials / all trials (0..1)."""
        return self.counts.finished / self.counts.total if self.counts.total else 0.0

    @classmethod
    def from_pb(cls, s: pb.Sweep) -> "Sweep":
        c = s.counts
        return cls(s.id, s.name, _state(pb.SweepState, s.state), s.priority, s.max_attempts,
                   s.created_ms, Counts(c.queued, c.running, c.succeeded, c.failed, c.cancelled,
                                        c.total, c.pruned), s)


@dataclasses.dataclass
class Trial:
    id: int
    sweep_id: int
    network: str
    width: float
    wbits: int
    abits: int
    seed: int
    state: str
    attempts: int
    error: str
    final_top1: Optional[float]
    best_top1: Optional[float]
    final_top5: Optional[float]
    cost_uniform: float
    cost_first_last_fp32: float
    raw: pb.Trial = dataclasses.field(repr=False)
    # PRUNED (a Pareto-pruned sweep's rung): top-1 after pruned_epoch epochs.
    pruned_top1: Optional[float] = None
    pruned_epoch: int = 0

    @classmethod
    def from_pb(cls, t: pb.Trial) -> "Trial":
        return cls(t.id, t.sweep_id, t.network, t.width, t.wbits, t.abits, t.seed,
                   _state(pb.TrialState, t.state), t.attempts, t.error, _opt(t, "final_top1"),
                   _opt(t, "best_top1"), _opt(t, "final_top5"), t.cost_uniform,
                   t.cost_first_last_fp32, t, _opt(t, "pruned_top1"), t.pruned_epoch)


@dataclasses.dataclass
class MetricPoint:
    name: str
    step: int
    value: float
    wall_ms: int


@dataclasses.dataclass
class TrialEvent:
    seq: int
    trial_id: int
    state: str
    attempt: int
    message: str
    time_ms: int


@dataclasses.dataclass
class WatchUpdate:
    """One message of watch(): the sweep as it is now and, after the first, the trial event that
    changed it."""
    sweep: Sweep
    event: Optional[TrialEvent]


@dataclasses.dataclass
class GridRow:
    """One (network, width, wbits, abits, scheme) cell as the coordinator sends it, seeds
    aggregated; top-1 in percent. `scheme` is the quantization scheme ("wrpn"). `cost` is the
    compute cost relative to 1x 32/32 under `cost_mode` (uniform: every layer at the cell's bits,
    the paper's Table 3 rule; first-last-fp32: first and last layers kept at 32 bits).
    `our_delta` is top1 minus this sweep's 1x 32/32 cell of the network; `paper_top1` the value
    of `paper_network` (the reference the coordinator chose: by family, or the `paper_ref` asked
    for) at the same width and bits in `paper_table`, and `paper_delta` its change from the
    paper's 1x 32/32 baseline. None where there is no such number."""
    network: str
    width: float
    wbits: int
    abits: int
    scheme: str
    state: str
    cost_mode: str
    cost: float
    top1: Optional[float]
    top1_std: Optional[float]
    best_top1: Optional[float]
    top5: Optional[float]
    seeds: int
    seeds_done: int
    trial_id: int
    fma_ratio: float
    our_delta: Optional[float]
    paper_network: str
    paper_table: str
    paper_top1: Optional[float]
    paper_cost: Optional[float]
    paper_delta: Optional[float]
    raw: pb.GridCell = dataclasses.field(repr=False)

    @property
    def bits(self) -> str:
        return f"{self.wbits}/{self.abits}"

    @property
    def cell(self) -> str:
        return f"{self.network} {self.width:g}x w{self.wbits}/a{self.abits} {self.scheme}"

    def as_dict(self) -> Dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "raw"}
        d["bits"] = self.bits
        d["cell"] = self.cell
        return d


@dataclasses.dataclass
class Grid:
    sweep_id: int
    cost_mode: str
    rows: List[GridRow]
    baselines: Dict[str, float]  # reference paper network -> its 1x 32/32 top-1
    bits_axis: List[int]
    paper_version: str  # the coordinator's paper tables; "" when it has none
    raw: pb.GetGridResponse = dataclasses.field(repr=False)

    def __iter__(self) -> Iterator[GridRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def cell(self, network: str, width: float, wbits: int, abits: int,
             scheme: str = "wrpn") -> GridRow:
        for r in self.rows:
            if (r.network, r.width, r.wbits, r.abits, r.scheme) == (network, width, wbits, abits,
                                                                    scheme):
                return r
        raise KeyError(f"no cell {network} {width:g}x w{wbits}/a{abits} {scheme} "
                       f"in sweep {self.sweep_id}")

    def to_pandas(self):
        """A pandas DataFrame, one row per cell (needs pandas: apt-get install python3-pandas)."""
        try:
            import pandas
        except ImportError:
            raise ImportError("Grid.to_pandas() needs pandas (apt-get install python3-pandas "
                              "or pip install pandas)") from None
        return pandas.DataFrame([r.as_dict() for r in self.rows])

    @classmethod
    def from_pb(cls, resp: pb.GetGridResponse, cost_mode: str) -> "Grid":
        check_cost_mode(cost_mode)
        rows = []
        for c in resp.cells:
            done = sum(1 for s in c.seeds if s.HasField("final_top1"))
            rows.append(GridRow(
                c.network, c.width, c.wbits, c.abits, c.scheme, _state(pb.TrialState, c.state),
                cost_mode, c.cost_uniform if cost_mode == "uniform" else c.cost_first_last_fp32,
                _opt(c, "final_top1"), _opt(c, "final_top1_std"), _opt(c, "best_top1"),
                _opt(c, "final_top5"), len(c.seeds), done, c.trial_id, c.fma_ratio,
                _opt(c, "our_delta"), c.paper_network, c.paper_table, _opt(c, "paper_top1"),
                _opt(c, "paper_cost"), _opt(c, "paper_delta"), c))
        return cls(resp.sweep_id, cost_mode, rows, {b.network: b.top1 for b in resp.baselines},
                   list(resp.bits_axis), resp.paper_version, resp)
