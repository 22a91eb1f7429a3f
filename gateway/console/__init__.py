"""`ci-gateway jobs ...`: the operator's command line, a gRPC client of a running gateway.

It sits beside `api` in the layers and imports nothing of the server: only the generated
client code (`gateway._proto`), so it talks to a gateway exactly as any other client does (over
gRPC, with the same TLS and bearer tokens), and cannot reach around it to CI or to the keys.

* `connection`: where the gateway is and how to reach it (flags, else environment);
* `commands`: the subcommands (argparse), what each one asks the gateway, and `main`;
* `render`: tables for people, JSON for scripts;
* `progress`: `watch`'s live view, a redrawn bar on a terminal and plain lines elsewhere;
* `exits`: what each exit code means, and the failures that end a command with one.
"""
