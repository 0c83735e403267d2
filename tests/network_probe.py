"""Probe tests for `test_network_guard.py`, run in a child pytest (never collected by default).

Each `test_reach_*` must FAIL under the suite's guard; `test_loopback_*` must pass.
192.0.2.1 is TEST-NET-1 (RFC 5737): never routed, so nothing is sent anywhere even unguarded.
"""

from __future__ import annotations

import contextlib
import socket
import threading

OUTSIDE = ("192.0.2.1", 80)


def test_reach_outside_directly() -> None:
    with socket.create_connection(OUTSIDE, timeout=0.5):
        pass


def test_reach_outside_and_swallow_the_error() -> None:
    """Code under test that catches every error (an error row, a retry) still fails the test."""
    with contextlib.suppress(Exception), socket.create_connection(OUTSIDE, timeout=0.5):
        pass


def test_reach_outside_over_ipv6() -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        sock.connect(("2001:db8::1", 80))  # RFC 3849 documentation prefix


def test_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        accepted = threading.Thread(target=lambda: server.accept()[0].close())
        accepted.start()
        with socket.create_connection(server.getsockname(), timeout=5):
            pass
        accepted.join(5)
