"""manygil serve over TLS against granian over TLS, with wrk, in one run (issue 23).

  python bench/serve_tls.py [--rounds 3] [--duration 5] [--connections 64] [--workloads hello,json] [--json PATH]

Both servers run the same applications (bench/serve_apps.py) with 2 workers and the same self-signed
ECDSA P-256 certificate (made here with the openssl command): manygil serve --certfile/--keyfile (the
C++ front end's OpenSSL sessions; also with --io-threads 2, since the I/O threads do the encryption)
and granian --ssl-certificate/--ssl-keyfile --http 1 (rustls). The
same two over plain HTTP run beside them, so the table also shows what TLS costs each. wrk -t2 -c64
keeps its connections alive (64 handshakes per measurement, then only records); servers take turns
within every round, in a rotating order, and each keeps its best round (req/s, with that round's
p50/p99 latency). Memory is the whole process tree's RSS after the run, the most seen.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from serve import free_port, measure_command, write_json  # noqa: E402  (bench/serve.py's helpers)

BIN = Path(sys.executable).parent
WORKLOADS = {"hello": "serve_apps:hello", "json": "serve_apps:json_app"}
SERVERS = ("manygil-tls", "manygil-tls-io2", "granian-tls", "manygil", "granian")


def make_certificate(directory: Path) -> tuple[Path, Path]:
    key, cert = directory / "key.pem", directory / "cert.pem"  # the key in PKCS#8, as granian requires
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    return key, cert


def command(server: str, app: str, port: int, key: Path, cert: Path) -> list[str]:
    if server.startswith("manygil"):
        cmd = [sys.executable, "-m", "manygil", "serve", app, "--workers", "2", "--bind", f"127.0.0.1:{port}"]
        if server.endswith("-io2"):  # the encryption spread over two I/O threads
            cmd += ["--io-threads", "2"]
        return cmd + (["--certfile", str(cert), "--keyfile", str(key)] if "-tls" in server else [])
    cmd = [str(BIN / "granian"), "--interface", "wsgi", "--workers", "2", "--host", "127.0.0.1", "--port", str(port),
           "--no-ws", "--http", "1", app]
    return cmd + (["--ssl-certificate", str(cert), "--ssl-keyfile", str(key), "--ssl-protocol-min", "tls1.2"]
                  if "-tls" in server else [])


def insecure_context() -> ssl.SSLContext:
    """The benchmark's self-signed certificate is not checked."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


def negotiated(port: int) -> str:
    """The TLS version and cipher the server picks for a client offering what wrk's OpenSSL offers."""
    with socket.create_connection(("127.0.0.1", port)) as raw, insecure_context().wrap_socket(raw) as t:
        return f"{t.version()} {t.cipher()[0]}"


def measure(server: str, workload: str, duration: int, connections: int, key: Path, cert: Path) -> dict:
    port = free_port()
    tls = "-tls" in server

    def cipher(result: dict) -> None:
        result["tls"] = negotiated(port) if tls else ""

    return measure_command(command(server, WORKLOADS[workload], port, key, cert),
                           f"{'https' if tls else 'http'}://127.0.0.1:{port}/", duration, connections,
                           context=insecure_context(), probe=cipher)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds of wrk per measurement")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--workloads", default="hello")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    for tool in ("wrk", "openssl"):
        if shutil.which(tool) is None:
            print(f"bench/serve_tls.py needs {tool} (the bootstrap installs it)", file=sys.stderr)
            return 1
    servers, workloads = args.servers.split(","), args.workloads.split(",")
    best: dict[tuple[str, str], dict] = {}
    with tempfile.TemporaryDirectory(prefix="manygil-tls-bench-") as tmp:
        key, cert = make_certificate(Path(tmp))
        for r in range(args.rounds):
            for w in workloads:
                order = servers[r % len(servers):] + servers[:r % len(servers)]
                for s in order:
                    m = measure(s, w, args.duration, args.connections, key, cert)
                    k = (s, w)
                    rss = max(m["rss_mib"], best.get(k, {}).get("rss_mib", 0))
                    if k not in best or m["rps"] > best[k]["rps"]:
                        best[k] = m
                    best[k]["rss_mib"] = rss
                    print(f"round {r + 1}: {w:6} {s:15} {m['rps']:9.0f} req/s  p50 {m['p50_ms']:6.2f} ms  "
                          f"p99 {m['p99_ms']:6.2f} ms  RSS {m['rss_mib']:5.0f} MiB  {m['tls']}"
                          + (f"  non-2xx {m['non_2xx']}" if m["non_2xx"] else ""), flush=True)
    print(f"\nbest of {args.rounds} rounds, wrk -t2 -c{args.connections} -d{args.duration}s, 2 workers each:")
    print(f"{'workload':8} {'server':15} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'RSS MiB':>8} {'vs granian':>10}"
          f" {'vs own http':>11}  tls")
    for w in workloads:
        for s in servers:
            if (s, w) not in best:
                continue
            m = best[(s, w)]
            peer = ("granian-tls" if "-tls" in s else "granian", w)
            plain = (s.split("-tls")[0], w)
            vs_granian = f"{m['rps'] / best[peer]['rps']:.2f}x" if peer in best else "-"
            vs_plain = f"{m['rps'] / best[plain]['rps']:.2f}x" if "-tls" in s and plain in best else "-"
            print(f"{w:8} {s:15} {m['rps']:9.0f} {m['p50_ms']:7.2f} {m['p99_ms']:7.2f} {m['rss_mib']:8.0f}"
                  f" {vs_granian:>10} {vs_plain:>11}  {m['tls']}")
    write_json(args.json, best)
    return 0


if __name__ == "__main__":
    sys.exit(main())
