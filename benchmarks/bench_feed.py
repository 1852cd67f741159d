"""Feed serving speed: `aftercal serve` against static file servers sending the same .ics bytes.

    .venv/bin/python benchmarks/bench_feed.py [--seconds 3] [--connections 4] [--log-level warning]

Starts, on free ports of 127.0.0.1 only, and stops again by itself:

* `aftercal serve` over a temporary SQLite database holding one treatment (`aftercal treatments add`);
* uvicorn + Starlette `StaticFiles` serving the feed's exact bytes from a file: the same production
  server stack, minus aftercal's work (token lookup, cache, validators);
* `python -m http.server --protocol HTTP/1.1` serving the same file (a floor, not a target).

Each server gets two cases with `--connections` concurrent keep-alive clients for `--seconds`:
`200` (a plain GET, whole body) and `304` (a revalidation: If-None-Match with the server's ETag, or
If-Modified-Since for http.server, which has no ETags). Every case is checked first: the status
must be the expected one and the body the same bytes. The load generator is `wrk` when it is on
PATH (Debian package `wrk`), otherwise a bounded asyncio + httpx client (slower: Python is then
often the bottleneck, which the table says). Prints one table; the ratio compares each row with
uvicorn + StaticFiles for the same case.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %d, "duration_us": %d, "bytes": %d, "errors": %d, "status_errors": %d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect + e.read + e.write + e.timeout, e.status))
end
"""
STATIC_APP = """
import sys
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

folder, port, level = sys.argv[1], int(sys.argv[2]), sys.argv[3]
app = Starlette(routes=[Mount("/static", app=StaticFiles(directory=folder))])
uvicorn.run(app, host="127.0.0.1", port=port, log_level=level, access_log=level in ("info", "debug"),
            server_header=False)
"""


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    ims: bool = False  # revalidates with If-Modified-Since instead of If-None-Match


@dataclass
class Result:
    server: str
    case: str
    status: int
    requests: int
    seconds: float
    body_bytes: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def aftercal_command() -> list[str]:
    script = Path(sys.executable).parent / "aftercal"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from aftercal.cli import main; main()"]


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server for {url} exited with status {process.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"server for {url} did not answer within {timeout:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def start(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def validators(url: str, ims: bool) -> tuple[bytes, dict[str, str]]:
    """The 200 body and the header that revalidates it; checks that the server answers 304 to it."""
    import httpx

    first = httpx.get(url, timeout=5.0)
    if first.status_code != 200:
        raise SystemExit(f"{url}: expected 200, got {first.status_code}")
    name, source = ("If-Modified-Since", "last-modified") if ims else ("If-None-Match", "etag")
    header = {name: first.headers[source]}
    second = httpx.get(url, headers=header, timeout=5.0)
    if second.status_code != 304 or second.content:
        raise SystemExit(f"{url}: revalidation with {header} gave {second.status_code}, expected an empty 304")
    return first.content, header


def run_wrk(
    url: str, headers: dict[str, str], seconds: float, connections: int, script: Path
) -> tuple[int, float, int]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(script)]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    match = re.search(r"^\{.*\}$", out, flags=re.MULTILINE)
    if match is None:
        raise SystemExit(f"unexpected wrk output:\n{out}")
    data = json.loads(match.group(0))
    if data["errors"] or data["status_errors"]:
        raise SystemExit(f"{url}: wrk saw {data['errors']} socket errors and {data['status_errors']} bad statuses")
    return int(data["requests"]), data["duration_us"] / 1e6, int(data["bytes"])


async def _httpx_load(url: str, headers: dict[str, str], seconds: float, connections: int) -> tuple[int, float, int]:
    import httpx

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    expected = 304 if headers else 200
    count = 0
    received = 0
    async with httpx.AsyncClient(limits=limits, timeout=5.0, headers=headers) as client:
        started = time.perf_counter()
        deadline = started + seconds

        async def worker() -> None:
            nonlocal count, received
            while time.perf_counter() < deadline:
                response = await client.get(url)
                if response.status_code != expected:
                    raise SystemExit(f"{url}: got {response.status_code}, expected {expected}")
                count += 1
                received += len(response.content)

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return count, elapsed, received


def measure(server: Server, args: argparse.Namespace, script: Path, body: bytes) -> list[Result]:
    fetched, revalidate = validators(server.url, server.ims)
    if fetched != body:
        raise SystemExit(f"{server.name} serves other bytes than the feed ({len(fetched)} vs {len(body)})")
    results = []
    for case, headers, status in (("200", {}, 200), ("304", revalidate, 304)):
        if args.wrk:
            run_wrk(server.url, headers, 1, args.connections, script)  # warm-up
            requests, seconds, nbytes = run_wrk(server.url, headers, args.seconds, args.connections, script)
        else:
            asyncio.run(_httpx_load(server.url, headers, 0.5, args.connections))
            requests, seconds, nbytes = asyncio.run(_httpx_load(server.url, headers, args.seconds, args.connections))
        results.append(Result(server.name, case, status, requests, seconds, nbytes))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each measured case (default 3)")
    parser.add_argument("--connections", type=int, default=4, help="concurrent keep-alive clients (default 4)")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level of both uvicorn servers")
    parser.add_argument("--no-wrk", dest="wrk", action="store_false", help="use the httpx client even with wrk")
    args = parser.parse_args()
    args.seconds = min(max(args.seconds, 1.0), 30.0)
    args.connections = min(max(args.connections, 1), 64)
    args.wrk = args.wrk and shutil.which("wrk") is not None

    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="bench-feed-") as tmp:
        folder = Path(tmp)
        log = folder / "servers.log"
        script = folder / "report.lua"
        script.write_text(WRK_SCRIPT)
        try:
            port = free_port()
            db = folder / "treatments.sqlite3"
            added = subprocess.run(
                [*aftercal_command(), "treatments", "add", "microneedling", "--at", "2026-11-24T10:00",
                 "--tz", "America/New_York", "--id", "BENCH-1", "--db", str(db),
                 "--base-url", f"http://{HOST}:{port}", "--no-qr"],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            if added.returncode != 0:
                raise SystemExit(f"aftercal treatments add failed: {added.stderr.strip()}")
            feed = re.search(r"^Feed: (\S+)$", added.stdout, flags=re.MULTILINE)
            if feed is None:
                raise SystemExit(f"no Feed: line in {added.stdout!r}")
            process = start(
                [*aftercal_command(), "serve", "--db", str(db), "--host", HOST, "--port", str(port),
                 "--log-level", args.log_level],
                log,
            )  # fmt: skip
            servers.append(Server("aftercal serve", feed.group(1), process))
            wait_ready(feed.group(1), process)
            body = __import__("httpx").get(feed.group(1), timeout=5.0).content

            static = folder / "static"
            static.mkdir()
            (static / "care.ics").write_bytes(body)
            port = free_port()
            process = start([sys.executable, "-c", STATIC_APP, str(static), str(port), args.log_level], log)
            servers.append(Server("uvicorn + StaticFiles", f"http://{HOST}:{port}/static/care.ics", process))
            wait_ready(servers[-1].url, process)

            port = free_port()
            process = start(
                [sys.executable, "-m", "http.server", "--bind", HOST, "--protocol", "HTTP/1.1",
                 "--directory", str(static), str(port)],
                log,
            )  # fmt: skip
            servers.append(Server("python -m http.server", f"http://{HOST}:{port}/care.ics", process, ims=True))
            wait_ready(servers[-1].url, process)

            results = [r for server in servers for r in measure(server, args, script, body)]
        finally:
            for server in servers:
                stop(server.process)
    report(results, args, len(body))


def report(results: list[Result], args: argparse.Namespace, size: int) -> None:
    baseline = {r.case: r.rps for r in results if r.server == "uvicorn + StaticFiles"}
    client = "wrk -t1" if args.wrk else "asyncio + httpx (the client may be the bottleneck)"
    print(
        f"Feed of {size} bytes on {HOST}; {args.connections} keep-alive connections, {args.seconds:g} s per case; "
        f"client: {client}; Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; uvicorn log level {args.log_level}"
    )
    print()
    # wrk counts what came over the wire (headers too); the httpx client counts bodies only.
    size_label = "wire B/resp" if args.wrk else "body B/resp"
    header = f"| {'server':<22} | {'case':<4} | {'req/s':>9} | {'ratio vs static':>15} | {size_label:>11} |"
    print(header)
    print("|" + "|".join("-" * len(cell) for cell in header.split("|")[1:-1]) + "|")
    for r in results:
        ratio = r.rps / baseline[r.case] if baseline.get(r.case) else float("nan")
        per = r.body_bytes / r.requests if r.requests else 0
        print(f"| {r.server:<22} | {r.case:<4} | {r.rps:>9,.0f} | {ratio:>15.2f} | {per:>11,.0f} |")


if __name__ == "__main__":
    main()
