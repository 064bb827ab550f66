"""The soak test's database outage without pg_ctlcluster: a TCP proxy in front of Postgres.

    python scripts/_soak_proxy.py POSTGRES_URL

Run by scripts/soak.py (`--fault-db proxy`) as a subprocess, so that forwarding every query of
the services does not compete with the load generator for one interpreter. Prints the proxied
URL on its first line of output, then forwards until it is stopped. SIGUSR1 cuts the database
off (open connections drop, new ones are refused), SIGUSR2 restores it. The proxy itself is
tests/support/proxy.py, the one the outage tests use.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.proxy import PgProxy  # noqa: E402 - needs ROOT on sys.path


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    proxy = PgProxy(sys.argv[1])
    stop = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: proxy.cut())
    signal.signal(signal.SIGUSR2, lambda *_: proxy.restore())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(proxy.url, flush=True)
    while not stop.wait(0.5):
        pass
    proxy.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
