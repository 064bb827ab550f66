"""A TCP proxy in front of Postgres that a test can cut and restore, to simulate an outage."""

from __future__ import annotations

import contextlib
import os
import socket
import threading

from sqlalchemy.engine import URL, make_url


class PgProxy:
    """Listens on 127.0.0.1 and forwards to the database of `url`; `cut()` drops everything."""

    def __init__(self, url: str) -> None:
        self.upstream = make_url(url)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._down = threading.Event()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        """The database URL that goes through the proxy."""
        via: URL = self.upstream.set(host="127.0.0.1", port=self.port, query={})
        return via.render_as_string(hide_password=False)

    def _connect_upstream(self) -> socket.socket:
        host = self.upstream.query.get("host") or self.upstream.host or "127.0.0.1"
        if isinstance(host, tuple):
            host = host[0]
        port = self.upstream.port or 5432
        if str(host).startswith("/"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(os.path.join(str(host), f".s.PGSQL.{port}"))
            return sock
        return socket.create_connection((str(host), port), timeout=5)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._down.is_set():
                client.close()
                continue
            try:
                upstream = self._connect_upstream()
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            with self._lock:
                self._open -= {src, dst}

    def cut(self) -> None:
        """The database becomes unreachable: open connections drop, new ones are refused."""
        self._down.set()
        with self._lock:
            conns = list(self._open)
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def restore(self) -> None:
        """The database is reachable again."""
        self._down.clear()

    def close(self) -> None:
        """Stop listening and drop everything."""
        self._closed = True
        self.cut()
        self._listener.close()
