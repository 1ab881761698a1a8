"""Where the client finds the coordinator: the same rules as the `wrpn` CLI
(client/connection.h). Arguments > environment (WRPN_ADDR, WRPN_TOKEN, WRPN_TLS_CA) > config file
($WRPN_CONFIG, else $XDG_CONFIG_HOME/wrpn/config.yaml, else ~/.config/wrpn/config.yaml, keys
addr, token, tls, tls_ca, connect_timeout)."""
from __future__ import annotations

import dataclasses
import os
from typing import Mapping, Optional

import yaml

_KEYS = ("addr", "token", "tls", "tls_ca", "connect_timeout")


@dataclasses.dataclass
class Settings:
    addr: str = "127.0.0.1:7070"
    token: str = ""
    tls: bool = False
    tls_ca: str = ""
    connect_timeout: float = 3.0
    addr_from: str = "default"
    config_path: str = ""


def default_config_path(env: Mapping[str, str]) -> str:
    if env.get("WRPN_CONFIG"):
        return env["WRPN_CONFIG"]
    if env.get("XDG_CONFIG_HOME"):
        return os.path.join(env["XDG_CONFIG_HOME"], "wrpn", "config.yaml")
    if env.get("HOME"):
        return os.path.join(env["HOME"], ".config", "wrpn", "config.yaml")
    return ""


def _read_config(path: str, s: Settings) -> None:
    with open(path, encoding="utf-8") as f:
        try:
            doc = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: {e}") from None
    if doc is None:
        return
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping of settings")
    for k, v in doc.items():
        if k not in _KEYS:
            raise ValueError(f"{path}: unknown key '{k}' (expected {', '.join(_KEYS)})")
        if k == "tls":
            if not isinstance(v, bool):
                raise ValueError(f"{path}: tls: expected true or false")
            s.tls = v
        elif k == "connect_timeout":
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise ValueError(f"{path}: connect_timeout: expected seconds > 0")
            s.connect_timeout = float(v)
        else:
            if not isinstance(v, str):
                raise ValueError(f"{path}: {k}: expected a string")
            setattr(s, k, v)
            if k == "addr":
                s.addr_from = path
    s.config_path = path


def resolve(addr: Optional[str] = None, token: Optional[str] = None,
            tls_ca: Optional[str] = None, tls: Optional[bool] = None,
            config: Optional[str] = None, connect_timeout: Optional[float] = None,
            env: Optional[Mapping[str, str]] = None) -> Settings:
    env = os.environ if env is None else env
    s = Settings()
    path = config or default_config_path(env)
    if path and os.path.exists(path):
        _read_config(path, s)
    elif config:
        raise FileNotFoundError(f"config: cannot read '{config}'")
    if env.get("WRPN_ADDR"):
        s.addr, s.addr_from = env["WRPN_ADDR"], "WRPN_ADDR"
    if env.get("WRPN_TOKEN"):
        s.token = env["WRPN_TOKEN"]
    if env.get("WRPN_TLS_CA"):
        s.tls_ca = env["WRPN_TLS_CA"]
    if addr:
        s.addr, s.addr_from = addr, "addr="
    if token:
        s.token = token
    if tls_ca:
        s.tls_ca = tls_ca
    if tls is not None:
        s.tls = tls
    if connect_timeout is not None:
        if connect_timeout <= 0:
            raise ValueError("connect_timeout: expected seconds > 0")
        s.connect_timeout = float(connect_timeout)
    if s.tls_ca:
        s.tls = True
    if ":" not in s.addr:
        s.addr += ":7070"
    return s
