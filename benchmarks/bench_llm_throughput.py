"""LLM layer throughput: sustained requests/s against a local OpenAI-compatible server.

The server (``valueflow.llm.testing``, in its own process) answers every request after a
fixed latency, so the ideal rate at concurrency C is C / latency. We report the achieved
rate as a fraction of that ideal (goal >= 0.9) for the bare backend, the client without a
cache and the client writing every result to a workspace file. The baseline, measured in
the same run, is a minimal keep-alive HTTP client on raw sockets: what this machine can do
at all right now (on a shared, busy machine it is below the ideal too). Then the cost of a
cache hit, per request, in a large batch and one request at a time.

    python benchmarks/bench_llm_throughput.py [--latency 0.1] [--concurrency 64] [--rounds 25]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from valueflow.llm import ChatRequest, LLMClient, get_backend
from valueflow.workspace import Workspace


def _requests(n: int, tag: str) -> list[ChatRequest]:
    return [ChatRequest.from_prompt(f"{tag} prompt number {i}: say something kind.",
                                    system="You are brief.", max_tokens=32) for i in range(n)]


async def _raw_baseline(url: str, conc: int, n: int) -> float:
    """Seconds for ``n`` requests from ``conc`` keep-alive sockets, no HTTP library."""
    import json
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    body = json.dumps({"model": "bench", "max_tokens": 32, "messages": [
        {"role": "user", "content": "raw prompt: say something kind."}]}).encode()
    head = (f"POST {parts.path}/chat/completions HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    req = head.encode() + body

    async def conn(k: int) -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        for _ in range(k):
            writer.write(req)
            await writer.drain()
            resp_head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in resp_head.split(b"\r\n")
                          if line.lower().startswith(b"content-length"))
            json.loads(await reader.readexactly(length))
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(conn(n // conc) for _ in range(conc)))
    return time.perf_counter() - t0


async def _bare(backend, reqs) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    await backend.generate(reqs)
    return time.perf_counter() - t0


async def _client(client, reqs) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = await client.generate(reqs, progress=False)
    return time.perf_counter() - t0, sum(not r.ok for r in out)


async def run(url: str, latency: float, conc: int, rounds: int, workdir: Path) -> None:
    n = conc * rounds
    ideal = conc / latency
    backend = get_backend("openai/bench", base_url=url, max_concurrency=conc, timeout=30)
    await backend.generate(_requests(conc, "warm"))  # open the connections

    rows = []
    base_rps = n / await _raw_baseline(url, conc, n)
    rows.append(("baseline: raw sockets, no library", n, base_rps))
    httpx_backend = get_backend("openai/bench", base_url=url, max_concurrency=conc,
                                timeout=30, transport="httpx")
    await httpx_backend.generate(_requests(conc, "warm"))
    dt = await _bare(httpx_backend, _requests(n, "httpx"))
    rows.append(("backend.generate, httpx transport", n, n / dt))
    await httpx_backend.aclose()
    dt = await _bare(backend, _requests(n, "bare"))
    rows.append((f"backend.generate, {type(backend._client).__name__[1:-9].lower()}", n, n / dt))
    with LLMClient(backend, cache=False) as client:
        dt, fails = await _client(client, _requests(n, "nocache"))
    rows.append(("LLMClient, cache off", n, n / dt))
    ws = Workspace(workdir / "bench.duckdb")
    client = LLMClient(backend, ws)
    reqs = _requests(n, "cache")
    dt, fails = await _client(client, reqs)
    rows.append(("LLMClient, workspace cache on", n, n / dt))
    print(f"\nThroughput at latency {latency * 1000:.0f} ms, concurrency {conc} "
          f"(ideal {ideal:.0f} req/s)")
    print(f"{'mode':34} {'requests':>9} {'req/s':>8} {'of ideal':>9} {'of baseline':>12}")
    for name, count, rps in rows:
        print(f"{name:34} {count:9d} {rps:8.1f} {rps / ideal:9.3f} {rps / base_rps:12.3f}")
    if fails:
        print(f"({fails} failed requests)")

    # Cache hits: the same batch again; and one request per generate() call.
    t0 = time.perf_counter()
    out = await client.generate(reqs, progress=False)
    batch_hit = (time.perf_counter() - t0) / n
    assert all(r.cached for r in out)
    single = reqs[:200]
    t0 = time.perf_counter()
    for r in single:
        await client.generate([r], progress=False)
    single_hit = (time.perf_counter() - t0) / len(single)
    print("\nCache hit cost (workspace file), per request")
    print(f"{'mode':34} {'us':>9} {'of a call':>10}")
    print(f"{'batch of ' + str(n):34} {batch_hit * 1e6:9.1f} {batch_hit / latency:10.5f}")
    print(f"{'one request per generate()':34} {single_hit * 1e6:9.1f} "
          f"{single_hit / latency:10.5f}")
    client.close()
    ws.close()
    await backend.aclose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=25)
    args = ap.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-m", "valueflow.llm.testing", "--latency", str(args.latency)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(run(url, args.latency, args.concurrency, args.rounds, Path(tmp)))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
