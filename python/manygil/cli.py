"""The `manygil` command: `manygil bench` and `manygil compat` (also `python -m manygil ...`)."""

import argparse
import json
import sys


def _write_json(doc, path):
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


def _bench(args):
    from ._bench import runner
    from ._pool import default_workers

    doc = runner.run(args.workers or default_workers(), quick=args.quick, rounds=args.rounds,
                     only_models=set(args.models.split(",")) if args.models else None)
    print(runner.format_table(doc))
    if args.json:
        _write_json(doc, args.json)
        print(f"\nresults: {args.json}")
    if args.plot:
        runner.plot(doc, args.plot)
        print(f"chart: {args.plot}")
    line = runner.summary(doc)
    if line:
        print(f"\n{line}")  # the last word
    return 0


def _compat(args):
    import datetime
    import platform

    from . import _compat
    from ._bench.runner import Progress

    progress = Progress()
    rows = _compat.check(args.modules or _compat.default_modules(), progress=progress, deep=args.deep,
                         timeout=args.timeout or _compat.DEFAULT_TIMEOUT)
    progress.done()
    print(_compat.format_table(rows))
    if args.json:
        _write_json({"schema": _compat.SCHEMA, "python": sys.version.split()[0],
                     "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                     "platform": platform.platform(), "deep": args.deep, "modules": rows}, args.json)
        print(f"\nresults: {args.json}")
    return 0


def _server_argv(args):
    """The command of the server process the supervisor runs: these options, without the supervisor
    (it adds one --bind fd://N per listening socket); faulthandler on, so that a crash prints the
    stacks of the threads that had Python running."""
    argv = [sys.executable, "-X", "faulthandler", "-m", "manygil", "serve", args.app, "--no-supervisor",
            "--backlog", str(args.backlog), "--max-body", str(args.max_body),
            "--graceful-timeout", str(args.graceful_timeout), "--io-threads", str(args.io_threads),
            "--max-pending", str(args.max_pending)]
    if args.workers is not None:
        argv += ["--workers", str(args.workers)]
    if args.timeout is not None:
        argv += ["--timeout", str(args.timeout)]
    if args.access_log:
        argv.append("--access-log")
    if args.access_log_format is not None:
        argv += ["--access-log-format", args.access_log_format]
    argv += ["--forwarded-allow-ips", args.forwarded_allow_ips, "--log-level", args.log_level]
    if args.certfile is not None:
        argv += ["--certfile", args.certfile]
    if args.keyfile is not None:
        argv += ["--keyfile", args.keyfile]
    if args.max_requests:
        argv += ["--max-requests", str(args.max_requests), "--max-requests-jitter", str(args.max_requests_jitter)]
    argv += ["--interface", args.interface, "--lifespan", args.lifespan]
    if args.root_path:
        argv += ["--root-path", args.root_path]
    argv += ["--pin-workers", args.pin_workers]
    return argv


def _serve(args):
    import os

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as gunicorn does: the application's module is found from here
    binds = args.bind or ["127.0.0.1:8000"]
    if args.keyfile is not None and args.certfile is None:
        print("manygil serve: --keyfile needs --certfile (the certificate it belongs to)", file=sys.stderr)
        return 2
    if not args.no_supervisor:
        from ._supervisor import supervise

        return supervise(_server_argv(args), binds, backlog=args.backlog, graceful_timeout=args.graceful_timeout,
                         reload=args.reload, log_level=args.log_level)
    if args.reload:
        print("manygil serve: --reload needs the supervisor (leave out --no-supervisor)", file=sys.stderr)
        return 2
    from ._serve import AppLoadError, serve  # not in the supervisor: it never loads the application
    try:
        serve(args.app, workers=args.workers, bind=binds, backlog=args.backlog,
              max_body=args.max_body, timeout=args.timeout, graceful_timeout=args.graceful_timeout,
              io_threads=args.io_threads, max_pending=args.max_pending,
              access_log=args.access_log or args.access_log_format is not None,
              access_log_format=args.access_log_format,
              forwarded_allow_ips=[ip.strip() for ip in args.forwarded_allow_ips.split(",") if ip.strip()],
              max_requests=args.max_requests, max_requests_jitter=args.max_requests_jitter, log_level=args.log_level,
              certfile=args.certfile, keyfile=args.keyfile, interface=args.interface, lifespan=args.lifespan,
              root_path=args.root_path, pin_workers=args.pin_workers)
    except (AppLoadError, ValueError, OSError) as e:
        print(f"manygil serve: {e}", file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="manygil", description="Python on every core, in one process.")
    commands = parser.add_subparsers(dest="command", required=True)

    bench = commands.add_parser("bench", help="the same workloads on serial, threads, processes, interpreter "
                                "pools, free-threaded CPython and manygil, side by side")
    bench.add_argument("--workers", type=int, default=0, help="workers per model (default: the CPUs available)")
    bench.add_argument("--quick", action="store_true", help="smaller sizes: each CPU workload takes 0.3-0.5 s serially (make demo)")
    bench.add_argument("--rounds", type=int, default=0, help="rounds per workload; each model keeps its best "
                       "(default: 5 quick, 3 full)")
    bench.add_argument("--models", help="comma-separated model names to run (serial always runs)")
    bench.add_argument("--json", metavar="PATH", help="also write the results as JSON (schema in the README)")
    bench.add_argument("--plot", metavar="PATH", help="also draw a PNG chart of the speedups (needs matplotlib)")
    bench.set_defaults(run=_bench)

    compat = commands.add_parser("compat", help="which modules load in an own-GIL interpreter")
    compat.add_argument("modules", nargs="*", metavar="MODULE",
                        help="modules to try (default: the stdlib's extension modules and the installed ones)")
    compat.add_argument("--deep", action="store_true", help="also import each extension module found on disk "
                        "under a package, one by one, and report which refuse")
    compat.add_argument("--timeout", type=float, default=None, metavar="S", help="stop an import (or the end of "
                        "its interpreter) that shows no progress for S seconds, and report it as failing (default: 300)")
    compat.add_argument("--json", metavar="PATH", help="also write the results as JSON (schema in the README)")
    compat.set_defaults(run=_compat)

    serve = commands.add_parser("serve", help="serve a WSGI or ASGI application on own-GIL interpreters behind a "
                                "C++ HTTP/1.1 front end")
    serve.add_argument("app", metavar="MODULE:APP", help="the WSGI or ASGI application, e.g. "
                       "myproject.wsgi:application or myproject.asgi:application (imported from the current directory)")
    serve.add_argument("--interface", default="auto", choices=("auto", "asgi", "wsgi"), help="how to call the "
                       "application (default auto: ASGI if it is a coroutine function, or its __call__ is one, taking "
                       "(scope, receive, send); else WSGI)")
    serve.add_argument("--lifespan", default="auto", choices=("auto", "on", "off"), help="ASGI: run the lifespan "
                       "protocol in every worker (default auto: if the application supports it; a failed startup "
                       "stops the server)")
    serve.add_argument("--root-path", default="", metavar="PATH", help="ASGI: scope['root_path'], the "
                       "application's mount point behind a proxy (e.g. /api)")
    serve.add_argument("--workers", type=int, default=None, help="interpreters running the application "
                       "(default: the CPUs available)")
    serve.add_argument("--pin-workers", default="auto", choices=("auto", "on", "off"), help="run worker i on CPU "
                       "i only (mod the CPUs available), so that two busy workers never take turns on one CPU "
                       "(default auto: on when --workers equals the CPUs available; off when other busy processes "
                       "or servers share these CPUs)")
    serve.add_argument("--bind", action="append", metavar="ADDRESS", help="address to listen on (repeatable; "
                       "default 127.0.0.1:8000): HOST:PORT, [::1]:PORT, unix:/path[?mode=660] or fd://N (an "
                       "inherited listening socket)")
    serve.add_argument("--backlog", type=int, default=1024, help="the listen backlog (default 1024)")
    serve.add_argument("--max-body", type=int, default=1 << 30, metavar="BYTES", help="largest request body "
                       "accepted; larger ones get 413 (default 1 GiB)")
    serve.add_argument("--timeout", type=float, default=None, metavar="S", help="interrupt a request that runs "
                       "longer (ASGI: cancel its task) and answer 504 (default: no limit)")
    serve.add_argument("--graceful-timeout", type=float, default=30.0, metavar="S", help="on SIGTERM/SIGINT, how "
                       "long requests in flight get to finish (default 30)")
    serve.add_argument("--io-threads", type=int, default=1, help="front-end I/O threads (default 1)")
    serve.add_argument("--max-pending", type=int, default=1024, help="requests with the workers at once before "
                       "the server stops reading and accepting (default 1024)")
    serve.add_argument("--access-log", action="store_true", help="log each request to stderr")
    serve.add_argument("--access-log-format", default=None, metavar="FORMAT", help="the access log line in "
                       "gunicorn's atoms (implies --access-log; default gunicorn's "
                       "'%%(h)s %%(l)s %%(u)s %%(t)s \"%%(r)s\" %%(s)s %%(b)s \"%%(f)s\" \"%%(a)s\"')")
    serve.add_argument("--forwarded-allow-ips", default="127.0.0.1,::1", metavar="IPS",
                       help="comma-separated proxy addresses (or *) whose Forwarded / X-Forwarded-For / "
                            "X-Forwarded-Proto headers set REMOTE_ADDR and wsgi.url_scheme (default "
                            "127.0.0.1,::1; a Unix-socket peer counts as one; '' for none)")
    serve.add_argument("--certfile", default=None, metavar="PATH", help="serve HTTPS (TLS 1.2 or newer, ALPN "
                       "http/1.1) with this PEM certificate, followed by its intermediates; read again at every "
                       "graceful restart (SIGHUP), so a renewed certificate takes effect without a dropped connection")
    serve.add_argument("--keyfile", default=None, metavar="PATH", help="the certificate's PEM private key, "
                       "unencrypted (default: in --certfile)")
    serve.add_argument("--max-requests", type=int, default=0, metavar="N", help="recycle: a worker interpreter that "
                       "has served N requests is replaced by a fresh one, which loads the application while the "
                       "old one serves on (ASGI: lifespan shutdown and startup; open WebSockets get --graceful-timeout) (default "
                       "0: never)")
    serve.add_argument("--max-requests-jitter", type=int, default=0, metavar="N", help="add up to N (at random, "
                       "per worker) to --max-requests, so that workers do not recycle at once")
    serve.add_argument("--log-level", default="info", type=str.lower,
                       choices=("debug", "info", "warning", "error", "critical"),
                       help="drop the server's messages below this level (default info: requests refused for bad "
                            "input are info, a response cut short warning, 5xx and crashes error); the access log "
                            "and the line saying where it listens are always written")
    serve.add_argument("--reload", action="store_true", help="restart gracefully when a .py file under the "
                       "current directory changes (development)")
    serve.add_argument("--no-supervisor", action="store_true", help="serve in this process, without the parent "
                       "that restarts the server when it dies (a crash then ends everything)")
    serve.set_defaults(run=_serve)

    args = parser.parse_args(argv)
    if (getattr(args, "workers", 0) or 0) < 0 or getattr(args, "rounds", 0) < 0:  # serve's default is None
        parser.error("--workers and --rounds must be positive")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
