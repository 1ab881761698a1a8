"""Debian's chromium, headless, for the web page's tests: one process per page load (--dump-dom
or --screenshot), a fresh profile each time (so sessionStorage starts empty), virtual time so the
page's fetches finish before the dump. Never left running: each call waits for its process."""
import os
import shutil
import subprocess
import tempfile

BUDGET_MS = 8000


def find():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(url, extra, timeout=90):
    profile = tempfile.mkdtemp(prefix="wrpn-chromium-")
    try:
        args = [find(), "--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--ignore-certificate-errors",
                f"--user-data-dir={profile}", f"--virtual-time-budget={BUDGET_MS}",
                "--hide-scrollbars", *extra, url]
        out = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=profile)
        if out.returncode != 0:
            raise RuntimeError(f"chromium exited {out.returncode}: {out.stderr[-2000:]}")
        return out.stdout
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def dump_dom(url):
    return _run(url, ["--dump-dom"])


def screenshot(url, path, width=1400, height=1200):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    _run(url, [f"--screenshot={path}", f"--window-size={width},{height}"])
    with open(path, "rb") as f:
        if f.read(8) != b"\x89PNG\r\n\x1a\n":
            raise RuntimeError(f"{path}: not a PNG")
