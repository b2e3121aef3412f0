"""`tcxhooks`: the one command line (docs/config.md). Each subcommand imports only what it needs."""

from __future__ import annotations

import importlib
import sys

USAGE = """usage: tcxhooks COMMAND [options]

commands:
  up -c FILE              run all four services on this host (supervised)
  monitor|dispatcher|media|analytics -c FILE
                          run one service
  demo                    simulator + receiver + all services, plays a call, prints the webhooks
  sim [--scenario NAME]   the 3CX V20 simulator alone
  fakecrm NAME            a fake CRM (bitrix24, …) built from its API docs, for trying an adapter
  check -c FILE           validate the file and reach every dependency
  health [--service liveness]
                          exit 0 when a service on this host is ready (container probes)
  capture -c FILE -o TRACE [--minutes N] [--anonymize]
                          record what the monitor receives from the PBX (docs/3cx.md §8)
  replay TRACE [--format form|json]
                          print the webhooks a trace gives, with no PBX and no CRM
  deliveries              list deliveries (dispatcher over gRPC)
  redeliver ID...|--since T|--dead
                          send deliveries again
  endpoints               list endpoints; enable/disable them
"""

# command → module whose main(argv) runs it
COMMANDS = {
    "up": "tcxhooks.supervisor",
    "monitor": "tcxhooks.monitor.__main__",
    "dispatcher": "tcxhooks.dispatcher.__main__",
    "media": "tcxhooks.media.__main__",
    "analytics": "tcxhooks.analytics.__main__",
    "demo": "tcxhooks.demo",
    "sim": "tcxhooks.simulator.__main__",
    "fakecrm": "tcxhooks.simulator.crm.__main__",
    "check": "tcxhooks.check",
    "health": "tcxhooks.probe",
    "capture": "tcxhooks.capture",
    "replay": "tcxhooks.replay",
    "deliveries": "tcxhooks.dispatcher.admin",
    "redeliver": "tcxhooks.dispatcher.admin",
    "endpoints": "tcxhooks.dispatcher.admin",
}


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        raise SystemExit(0 if args else 2)
    if args[0] in ("-V", "--version"):
        from tcxhooks import __version__

        print(f"tcxhooks {__version__}")
        return
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"tcxhooks: unknown command {command!r}\n\n{USAGE}", file=sys.stderr, end="")
        raise SystemExit(2)
    module = importlib.import_module(COMMANDS[command])
    if COMMANDS[command].endswith("admin"):
        module.main([command, *rest])
    else:
        module.main(rest)


if __name__ == "__main__":
    main()
