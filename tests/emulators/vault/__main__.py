"""`python -m tests.emulators.vault --port 8200`: a stand-in for `vault server -dev`."""

from __future__ import annotations

import argparse
import os
import sys
import threading

from tests.specs import SpecFilesMissing

from .server import VaultEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.emulators.vault", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8200, help="0 picks a free port")
    parser.add_argument("--root-token", default=os.environ.get("VAULT_DEV_ROOT_TOKEN_ID"))
    parser.add_argument(
        "--rtt-ms", type=float, default=0.0, help="answer every request this many ms late"
    )
    args = parser.parse_args(argv)
    emulator = VaultEmulator(root_token=args.root_token or None, host=args.host, port=args.port)
    emulator.set_delay(args.rtt_ms / 1000)
    try:
        emulator.start()
    except SpecFilesMissing as error:
        print(error, file=sys.stderr, flush=True)
        return 1
    print("==> Vault emulator (dev mode) started! Log data will stream in below:", flush=True)
    print(f"Api Address: {emulator.url}", flush=True)
    print(f"Root Token: {emulator.root_token}", flush=True)
    print(f"    $ export VAULT_ADDR='{emulator.url}'", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print("==> Vault emulator shutdown triggered", file=sys.stderr, flush=True)
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
