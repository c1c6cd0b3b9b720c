"""How gunicorn spreads keep-alive connections over its workers, and what that costs.

``python -m tests.bench.connection_split`` serves ``tests/pid_app.py`` (a page answering with
the id of the worker process that served it) with the project's gunicorn settings and two
workers (``--workers``), and measures in interleaved rounds, on a fresh server each round:

(a) the split: bursts of 8 connections opened at once, one request on each; how many of the
    8 each worker took (8/0, 7/1, 6/2, 5/3, 4/4), counted over every burst;
(b) requests/s of ``wrk -t2 -c8`` with keep-alive, and the split of wrk's own 8 connections
    (read with ``ss`` a second into the run);
(c) requests/s of ``wrk -t2 -c8`` with ``Connection: close`` (a new connection per request);
(d) requests lost to worker restarts: a server recycling its workers every 2,000 requests (the
    project's setting) gets requests for a while from 4 keep-alive clients that reconnect
    when told to (``Connection: close``), as a proxy does; the attempts that failed
    (connection refused or reset; a refused client tries again after 10 ms) out of all, and
    the restarts seen (worker ids beyond the first ones).

Configurations measured:

* ``reuse_port``: the settings as they are (``webapp/gunicorn_conf.py``);
* ``shared socket``: the same with ``GUNICORN_REUSE_PORT=0`` (one socket all workers accept
  from, gunicorn's default);
* any ``--also NAME=GUNICORN:DIRECTORY``: another checkout served by another gunicorn. The
  custom worker this configuration replaced (commit 9de9ce6, gunicorn 23)::

      git worktree add /tmp/before 9de9ce6
      python3 -m venv /tmp/g23
      /tmp/g23/bin/pip install 'gunicorn<24' flask flask-sqlalchemy flask-migrate \
          psycopg2-binary flask-wtf flask-login 'flask-limiter[redis]' email-validator
      python -m tests.bench.connection_split --also "old worker=/tmp/g23/bin/gunicorn:/tmp/before"

Nothing here needs a database. Other load on the machine shows in the figures: compare
medians of configurations measured in the same run, not figures from separate runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BURST = 8


@dataclass
class Config:
    name: str
    gunicorn: str
    directory: Path
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Results:
    bursts: Counter[str] = field(default_factory=Counter)
    keep_alive: list[tuple[float, str]] = field(default_factory=list)  # (req/s, wrk's split)
    close: list[float] = field(default_factory=list)
    errors: int = 0
    restarts: int = 0
    served: int = 0
    failed: Counter[str] = field(default_factory=Counter)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def split(counts: Counter[str], workers: int) -> str:
    """How many of the connections each worker holds, most first: ``5/3``."""
    shares = sorted(counts.values(), reverse=True)
    shares += [0] * (workers - len(shares))
    return "/".join(str(n) for n in shares)


def request(sock: socket.socket) -> str:
    """One HTTP/1.1 request on a kept-alive connection; the response's body."""
    return exchange(sock)[0]


def exchange(sock: socket.socket) -> tuple[str, bool]:
    """One HTTP/1.1 request on a kept-alive connection: the response's body, and whether
    the server closes the connection after it."""
    sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the response")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    found = re.search(rb"(?i)content-length: *(\d+)", head)
    if found is None:
        raise ConnectionError(f"no Content-Length in {head!r}")
    while len(body) < int(found.group(1)):
        body += sock.recv(4096)
    return body.decode(), b"connection: close" in head.lower()


@contextmanager
def serve(config: Config, workers: int, recycle: bool = False) -> Iterator[int]:
    """``tests.pid_app:app`` served by ``config``; yields the port once both workers answer.

    Workers are recycled after the configured number of requests when ``recycle`` is true,
    and never otherwise.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "WEB_"))}
    env.update(
        WEB_CONCURRENCY=str(workers),
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_LOG_LEVEL="warning",
        **config.env,
    )
    if not recycle:
        env["GUNICORN_MAX_REQUESTS"] = "100000000"
    command = [config.gunicorn, "-c", "python:webapp.gunicorn_conf", "tests.pid_app:app"]
    process = subprocess.Popen(command, cwd=config.directory, env=env)
    try:
        seen: set[str] = set()
        deadline = time.monotonic() + 30
        while len(seen) < workers:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{config.name}: gunicorn did not start {workers} workers")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                    seen.add(request(sock))
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def burst(port: int, workers: int) -> str:
    """Eight connections opened at once, one request on each: how they split over workers."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(BURST)]
    try:
        served = Counter(request(sock) for sock in socks)
    finally:
        for sock in socks:
            sock.close()
    return split(served, workers)


def connections_per_worker(port: int, workers: int) -> str:
    """The split of the established connections to ``port``, by worker process (``ss``)."""
    listing = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return split(Counter(re.findall(r"pid=(\d+)", listing)), workers)


def restarts(port: int, workers: int, seconds: float, results: Results) -> None:
    """Four keep-alive clients for ``seconds``, reconnecting when the server says
    ``Connection: close`` (it does when a worker is about to be recycled)."""
    stop = time.monotonic() + seconds
    lock = threading.Lock()
    seen: set[str] = set()

    def client() -> None:
        sock: socket.socket | None = None
        while time.monotonic() < stop:
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                pid, closing = exchange(sock)
                with lock:
                    results.served += 1
                    seen.add(pid)
                if closing:
                    sock.close()
                    sock = None
            except OSError as error:
                with lock:
                    results.failed[type(error).__name__] += 1
                if sock is not None:
                    sock.close()
                sock = None
                time.sleep(0.01)
        if sock is not None:
            sock.close()

    clients = [threading.Thread(target=client) for _ in range(4)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    results.restarts += max(len(seen) - workers, 0)


def wrk(port: int, workers: int, seconds: float, *headers: str) -> tuple[dict[str, Any], str]:
    """A ``wrk -t2 -c8`` run's report, and the split of its connections a second into it."""
    command = ["wrk", "-t2", "-c8", f"-d{seconds:g}s", "-s", str(HERE / "report.lua")]
    for header in headers:
        command += ["-H", header]
    run = subprocess.Popen(
        [*command, f"http://127.0.0.1:{port}/"], stdout=subprocess.PIPE, text=True
    )
    time.sleep(min(1.0, seconds / 2))
    seen = connections_per_worker(port, workers)
    output, _ = run.communicate(timeout=seconds + 30)
    report = next(line for line in reversed(output.splitlines()) if line.startswith("{"))
    return json.loads(report), seen


def rate(report: dict[str, Any]) -> float:
    return float(report["requests"]) / report["duration_us"] * 1e6


def errors(report: dict[str, Any]) -> int:
    return sum(int(report[k]) for k in ("connect", "read", "write", "status", "timeout"))


def measure(config: Config, results: Results, args: argparse.Namespace) -> None:
    with serve(config, args.workers) as port:
        for _ in range(args.bursts):
            results.bursts[burst(port, args.workers)] += 1
            time.sleep(0.2)  # the closed connections go first (the old worker counted them)
        report, seen = wrk(port, args.workers, args.seconds)
        results.keep_alive.append((rate(report), seen))
        results.errors += errors(report)
        if args.close:
            report, _ = wrk(port, args.workers, args.seconds, "Connection: close")
            results.close.append(rate(report))
            results.errors += errors(report)
    if args.restarts:
        with serve(config, args.workers, recycle=True) as port:
            restarts(port, args.workers, args.restarts, results)


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):,.0f} (range {min(values):,.0f}-{max(values):,.0f})"


def report(configs: list[Config], results: dict[str, Results]) -> None:
    width = max(len(c.name) for c in configs)
    seen = {s for found in results.values() for s in found.bursts}
    if seen:
        # The most lopsided first: 8/0, 7/1, ... 4/4.
        splits = sorted(seen, key=lambda s: [int(n) for n in s.split("/")], reverse=True)
        columns = max(len(s) for s in splits)
        print(f"\n{'bursts of 8':<{width}}  " + "  ".join(f"{s:>{columns}}" for s in splits))
        for config in configs:
            counts = results[config.name].bursts
            row = "  ".join(f"{counts[s]:>{columns}}" for s in splits)
            print(f"{config.name:<{width}}  {row}")
    for config in configs:
        found = results[config.name]
        print(f"\n{config.name}:")
        if found.keep_alive:
            print(f"  keep-alive req/s: {spread([r for r, _ in found.keep_alive])}")
            whole = [r for r, s in found.keep_alive if s.endswith("/0")]
            if whole:
                print(f"    with all of wrk's connections on one worker: {spread(whole)}")
            runs = ", ".join(f"{r:,.0f} ({s})" for r, s in found.keep_alive)
            print(f"    each round (wrk's split): {runs}")
        if found.close:
            print(f"  Connection: close req/s: {spread(found.close)}")
        if found.keep_alive or found.close:
            print(f"  wrk errors: {found.errors}")
        if found.served or found.failed:
            failed = sum(found.failed.values())
            kinds = ", ".join(f"{n} {kind}" for kind, n in found.failed.most_common())
            print(
                f"  worker restarts: {found.restarts}; requests failed {failed} of "
                f"{found.served + failed:,}" + (f" ({kinds})" if kinds else "")
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--bursts", type=int, default=25, help="bursts per round")
    parser.add_argument("--seconds", type=float, default=5, help="length of each wrk run")
    parser.add_argument(
        "--restarts",
        type=float,
        default=10,
        metavar="SECONDS",
        help="length of each worker-restart run (0: none)",
    )
    parser.add_argument(
        "--no-close", dest="close", action="store_false", help="skip the Connection: close runs"
    )
    parser.add_argument(
        "--no-shared",
        dest="shared",
        action="store_false",
        help="skip the shared-socket configuration",
    )
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="NAME=GUNICORN:DIR",
        help="another gunicorn and checkout to measure beside this one",
    )
    args = parser.parse_args()

    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    configs = [Config("reuse_port", gunicorn, ROOT, {"GUNICORN_REUSE_PORT": "1"})]
    if args.shared:
        configs.append(Config("shared socket", gunicorn, ROOT, {"GUNICORN_REUSE_PORT": "0"}))
    for also in args.also:
        name, _, rest = also.partition("=")
        binary, _, directory = rest.rpartition(":")
        if not (name and binary and directory):
            parser.error(f"--also {also!r}: expected NAME=GUNICORN:DIRECTORY")
        configs.append(Config(name, binary, Path(directory)))

    results = {config.name: Results() for config in configs}
    for n in range(args.rounds):
        order = configs[n % len(configs) :] + configs[: n % len(configs)]
        for config in order:
            measure(config, results[config.name], args)
            found = results[config.name]
            print(
                f"round {n + 1}/{args.rounds} {config.name}: "
                f"{found.keep_alive[-1][0]:,.0f} req/s keep-alive ({found.keep_alive[-1][1]})"
                + (f", {found.close[-1]:,.0f} req/s close" if found.close else ""),
                flush=True,
            )
    report(configs, results)


if __name__ == "__main__":
    main()
