#!/usr/bin/env python3
"""Runs the Django test backend under gunicorn on 127.0.0.1 (see README.md).

    .venv/bin/python serve.py [--data-dir DIR] [--port N] [--threads N] [--exit-on-stdin-eof]

Binds the listening socket itself (port 0 by default: a free port), migrates the SQLite
database, seeds the users, loads or creates the chat signing key, then hands the socket to
gunicorn (`fd://N`): one gthread worker, so the in-memory counters and the LocMemCache that
django-ratelimit counts in are shared by every request. Once the worker is up it prints exactly
one line on stdout:

    CONFAB_DJANGO_READY base=http://127.0.0.1:<port>

Everything else (gunicorn's messages, one line per request, the auth events) goes to stderr.
"""

import argparse
import os
import signal
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
READY_PREFIX = "CONFAB_DJANGO_READY base="


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data-dir",
        default=os.path.join(HERE, ".data"),
        help="where the SQLite database (unless DJANGO_DB is set) and the chat signing key live",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--threads", type=int, default=8, help="threads of the single worker")
    parser.add_argument(
        "--exit-on-stdin-eof",
        action="store_true",
        help="stop when stdin closes (the test harness holds it open while it runs)",
    )
    return parser.parse_args()


def listen(port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def prepare(data_dir, base):
    """Django set up, database migrated, users seeded, signing key loaded: all before gunicorn
    forks, so the worker starts with everything in place."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "confab_backend.settings"
    os.environ["CONFAB_DJANGO_BASE_URL"] = base
    os.environ["CONFAB_DJANGO_DATA_DIR"] = data_dir
    sys.path.insert(0, HERE)

    import django

    django.setup()

    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application
    from django.db import connections

    from confab_api.seed import seed_users
    from confab_api.signing import signer

    call_command("migrate", interactive=False, verbosity=0)
    seed_users()
    signer()
    application = get_wsgi_application()
    # The worker opens its own connections; none may be shared across the fork.
    connections.close_all()
    return application


def ready_notifier(base):
    """A pipe the worker writes one byte to once it runs; the first byte prints the ready line
    (exactly once, even if gunicorn ever replaces the worker)."""
    read_end, write_end = os.pipe()

    def announce():
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            if pipe.read(1):
                sys.stdout.write(f"{READY_PREFIX}{base}\n")
                sys.stdout.flush()
            while pipe.read(1):
                pass

    threading.Thread(target=announce, name="ready", daemon=True).start()

    def post_worker_init(worker):
        os.write(write_end, b"r")

    return post_worker_init


def exit_on_stdin_eof():
    """Stops the arbiter (quick shutdown, SIGINT) when stdin reaches end of file: the harness
    that started this process has gone, with or without running its destructors."""

    def watch():
        # os.read, not sys.stdin: a thread blocked inside sys.stdin holds its buffer lock, and
        # the worker, forked meanwhile, would inherit it held and abort at its exit.
        while os.read(0, 4096):
            pass
        print("stdin closed: stopping", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, name="stdin-eof", daemon=True).start()


def main():
    started = time.monotonic()
    args = parse_args()
    data_dir = os.path.abspath(args.data_dir)
    os.makedirs(data_dir, exist_ok=True)
    sock = listen(args.port)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    application = prepare(data_dir, base)

    from gunicorn.app.base import BaseApplication

    options = {
        "bind": [f"fd://{sock.fileno()}"],
        "workers": 1,
        "worker_class": "gthread",
        "threads": args.threads,
        "timeout": 30,
        "graceful_timeout": 2,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        # Gunicorn 25+ opens a control socket at a fixed per-user path by default; several
        # backends run side by side here, and none needs it.
        "control_socket_disable": True,
        "post_worker_init": ready_notifier(base),
        "proc_name": "confab-django",
    }

    class Server(BaseApplication):
        def load_config(self):
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            return application

    if args.exit_on_stdin_eof:
        exit_on_stdin_eof()
    print(
        f"prepared in {time.monotonic() - started:.2f} s (data dir {data_dir}); starting gunicorn",
        file=sys.stderr,
        flush=True,
    )
    Server().run()


if __name__ == "__main__":
    main()
