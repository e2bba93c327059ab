#!/usr/bin/python3
"""Reads Prometheus text with the reference parser (prometheus_client) and prints one sample's
value, as an integer.

  prom_query.py FILE NAME [LABEL=VALUE ...]     /metrics as curl saved it
  prom_query.py --log LOG NAME [LABEL=VALUE ...] the last SIGUSR1 "metrics:" lines of a vpn2socks log
  prom_query.py --type FILE FAMILY              the family's type (counter, gauge)

Exit 1, with the reason on stderr, when the text does not parse or the sample is not there."""
import sys

from prometheus_client.parser import text_string_to_metric_families


def log_text(path):
    """The samples of the last SIGUSR1 dump: from the last tunnel_up line on."""
    lines = [l.rstrip("\n") for l in open(path, encoding="utf-8", errors="replace")]
    dumps = [i for i, l in enumerate(lines) if "metrics: vpn2socks_tunnel_up " in l]
    if not dumps:
        sys.exit("no metrics lines in the log")
    out = []
    for l in lines[dumps[-1]:]:
        at = l.find("metrics: ")
        if at < 0:
            continue
        out.extend(l[at + len("metrics: "):].split(", "))
    return "\n".join(out) + "\n"


def main():
    args = sys.argv[1:]
    if args[0] == "--type":
        for fam in text_string_to_metric_families(open(args[1]).read()):
            if fam.name == args[2] or fam.name + "_total" == args[2]:
                print(fam.type)
                return
        sys.exit(f"no family {args[2]}")
    text = log_text(args[1]) if args[0] == "--log" else open(args[0]).read()
    if args[0] == "--log":
        args = args[1:]
    name, want = args[1], dict(a.split("=", 1) for a in args[2:])
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and s.labels == want:
                print(int(s.value))
                return
    sys.exit(f"no sample {name} {want}")


if __name__ == "__main__":
    main()
