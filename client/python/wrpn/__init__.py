"""wrpn: a Python client for the wrpn coordinator.

    import wrpn
    c = wrpn.Client()                      # WRPN_ADDR / WRPN_TOKEN / ~/.config/wrpn/config.yaml
    sweep_id = c.submit("examples/sweeps/fashion-quick.yaml")
    for update in c.watch(sweep_id):
        print(update.sweep.counts)
    print(c.grid(sweep_id).to_pandas())
"""
from wrpn.client import Client
from wrpn.errors import (AuthError, InvalidArgumentError, NotFoundError, UnavailableError,
                         WrpnError)
from wrpn.types import (COST_MODES, Counts, Grid, GridRow, MetricPoint, Sweep, Trial,
                        TrialEvent, WatchUpdate)

__all__ = ["Client", "WrpnError", "NotFoundError", "AuthError", "InvalidArgumentError",
           "UnavailableError", "Grid", "GridRow", "Sweep", "Counts", "Trial", "MetricPoint",
           "TrialEvent", "WatchUpdate", "COST_MODES"]
