#!/usr/bin/env python3
"""Extracts redis-server's COMMAND INFO and COMMAND DOCS for the commands kvserver has.

    extract_redis_commands.py --redis-port P [--kvserver-port K] [NAME ...] > redis-command-info.json

Writes one JSON object, sorted by command name: for each name, Redis's RESP3 replies to
`COMMAND INFO name` ("info") and `COMMAND DOCS name` ("docs") as plain JSON (maps become
objects in wire order, sets and arrays become lists). The names are kvserver's top-level
commands (`COMMAND LIST` of the kvserver on --kvserver-port) plus the NAMEs given (commands
other work adds later: MULTI, EXEC, ...); names Redis does not know are left out. Nothing
here starts or stops a server: run both on 127.0.0.1 first.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import resp  # noqa: E402


def plain(reply):
    """A RESP3 reply as plain JSON: maps in wire order, strings decoded."""
    t, v = reply
    if t == '%':
        return {plain(k): plain(x) for k, x in v}
    if t in '*~>':
        return None if v is None else [plain(x) for x in v]
    if t in '+$=':
        return None if v is None else v.decode()
    if t in ':(':
        return v
    if t == '_':
        return None
    raise ValueError("unexpected reply %r" % (reply,))


def top_level_names(port):
    c = resp.RespConn(port)
    t, v = c.call("COMMAND", "LIST")
    c.close()
    return [x[1].decode().lower() for x in v if b"|" not in x[1]]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--redis-port", type=int, required=True)
    ap.add_argument("--kvserver-port", type=int)
    ap.add_argument("names", nargs="*")
    args = ap.parse_args()
    names = set(n.lower() for n in args.names)
    if args.kvserver_port:
        names |= set(top_level_names(args.kvserver_port))
    c = resp.RespConn(args.redis_port)
    if c.call("HELLO", "3")[0] != '%':
        raise SystemExit("redis-server did not switch to RESP3")
    out = {}
    for name in sorted(names):
        t, v = c.call("COMMAND", "INFO", name)
        if v[0][0] in '_$':
            continue
        info = plain(v[0])
        docs = plain(c.call("COMMAND", "DOCS", name))
        out[name] = {"info": info, "docs": docs[name]}
    c.close()
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
