"""`python -m tests.emulators.slack --port 3001`: a Slack workspace on loopback until Ctrl-C."""

from __future__ import annotations

import argparse
import sys
import threading

from tests.specs import SpecFilesMissing

from .emulator import DEFAULT_BOT_TOKEN, DEFAULT_SIGNING_SECRET, SlackEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.emulators.slack", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3001, help="0 picks a free port")
    parser.add_argument("--bot-token", default=DEFAULT_BOT_TOKEN)
    parser.add_argument("--signing-secret", default=DEFAULT_SIGNING_SECRET)
    parser.add_argument("--enforce-rate-limits", action="store_true")
    args = parser.parse_args(argv)
    emulator = SlackEmulator(
        bot_token=args.bot_token,
        signing_secret=args.signing_secret,
        host=args.host,
        port=args.port,
        enforce_rate_limits=args.enforce_rate_limits,
    )
    try:
        emulator.start()
    except SpecFilesMissing as error:
        print(error, file=sys.stderr, flush=True)
        return 1
    print(f"Slack emulator listening on {emulator.url}", flush=True)
    print(f"GATEHOUSE_SLACK_API_URL={emulator.api_url}", flush=True)
    print(f"SLACK_BOT_TOKEN={emulator.bot_token}", flush=True)
    print(f"SLACK_SIGNING_SECRET={emulator.signing_secret}", flush=True)
    print(f"team {emulator.team_id}, bot user {emulator.bot_user_id}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print("Slack emulator stopping", file=sys.stderr, flush=True)
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
