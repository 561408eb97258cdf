"""A small, exact RESP2/RESP3 client over a raw socket.

redis-py hides reply types (a status reply "OK" and a bulk "OK" both come back as
Python values), so the tests that compare replies byte for byte use this client.

Replies are tuples ``(type, value)`` where ``type`` is the RESP type byte as a
one-character string:

    '+'  simple string   value: bytes
    '-'  error           value: bytes (the whole line, e.g. b"ERR syntax error")
    ':'  integer         value: int
    '$'  bulk string     value: bytes, or None for the RESP2 null bulk ($-1)
    '*'  array           value: list of replies, or None for the RESP2 null array (*-1)
    '_'  RESP3 null      value: None
    '%'  RESP3 map       value: list of (key, value) pairs, in wire order
    '~'  RESP3 set       value: list of replies
    '>'  RESP3 push      value: list of replies
    '#'  RESP3 boolean   value: bool
    ','  RESP3 double    value: bytes (as sent)
    '('  RESP3 big num   value: int
    '='  RESP3 verbatim  value: bytes (including the 3-letter format and ':')
    '!'  RESP3 blob err  value: bytes
    '|'  RESP3 attribute value: (pairs, the reply that follows)
"""

import socket
import time

CRLF = b"\r\n"


class ProtocolViolation(Exception):
    """The server sent bytes that are not valid RESP."""


class ConnectionClosed(Exception):
    """The server closed the connection before a whole reply arrived."""


def encode(*args):
    """Encodes one command as a RESP multibulk request."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        elif isinstance(a, float):
            a = repr(a).encode()
        out.append(b"$%d\r\n" % len(a))
        out.append(a)
        out.append(CRLF)
    return b"".join(out)


# Constructors for expected replies, so tests read like transcripts.
def ok():
    return ('+', b'OK')


def status(s):
    return ('+', s.encode() if isinstance(s, str) else s)


def err(s):
    return ('-', s.encode() if isinstance(s, str) else s)


def integer(n):
    return (':', n)


def bulk(s):
    if s is None:
        return ('$', None)
    return ('$', s.encode() if isinstance(s, str) else s)


NIL = ('$', None)
NULL3 = ('_', None)


def array(*items):
    return ('*', list(items))


def bulks(*items):
    return ('*', [bulk(i) for i in items])


def show(reply, limit=300):
    """A short readable form of a reply for failure messages."""
    s = repr(reply)
    return s if len(s) <= limit else s[:limit] + "...(%d chars)" % len(s)


class RespConn:
    """One connection; reads exactly one reply per `read_reply` call."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- writing --

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, *args):
        self.sock.sendall(encode(*args))

    def call(self, *args):
        self.send(*args)
        return self.read_reply()

    def pipeline(self, commands):
        """Sends every command in one write, then reads one reply per command."""
        self.sock.sendall(b"".join(encode(*c) for c in commands))
        return [self.read_reply() for _ in commands]

    # -- reading --

    def _fill(self):
        if self.pos > 65536 and self.pos > len(self.buf) // 2:
            del self.buf[:self.pos]
            self.pos = 0
        data = self.sock.recv(1 << 16)
        if not data:
            raise ConnectionClosed("connection closed by server")
        self.buf += data

    def _line(self):
        while True:
            i = self.buf.find(CRLF, self.pos)
            if i >= 0:
                line = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                return line
            self._fill()

    def _exact(self, n):
        while len(self.buf) - self.pos < n + 2:
            self._fill()
        data = bytes(self.buf[self.pos:self.pos + n])
        if self.buf[self.pos + n:self.pos + n + 2] != CRLF:
            raise ProtocolViolation("bulk not terminated by CRLF")
        self.pos += n + 2
        return data

    def _int(self, s):
        try:
            return int(s)
        except ValueError:
            raise ProtocolViolation("bad integer %r" % s)

    def read_reply(self):
        line = self._line()
        if not line:
            raise ProtocolViolation("empty reply line")
        t, rest = chr(line[0]), line[1:]
        if t in '+-':
            return (t, rest)
        if t == ':':
            return (t, self._int(rest))
        if t == '(':
            return (t, self._int(rest))
        if t in '$=!':
            n = self._int(rest)
            if n < 0:
                if t != '$':
                    raise ProtocolViolation("negative length for %s" % t)
                return ('$', None)
            return (t, self._exact(n))
        if t in '*~>':
            n = self._int(rest)
            if n < 0:
                if t != '*':
                    raise ProtocolViolation("negative count for %s" % t)
                return ('*', None)
            return (t, [self.read_reply() for _ in range(n)])
        if t == '%':
            n = self._int(rest)
            return (t, [(self.read_reply(), self.read_reply()) for _ in range(n)])
        if t == '|':
            n = self._int(rest)
            pairs = [(self.read_reply(), self.read_reply()) for _ in range(n)]
            return (t, (pairs, self.read_reply()))
        if t == '_':
            if rest:
                raise ProtocolViolation("bytes after RESP3 null")
            return ('_', None)
        if t == '#':
            if rest not in (b't', b'f'):
                raise ProtocolViolation("bad boolean %r" % rest)
            return ('#', rest == b't')
        if t == ',':
            return (t, rest)
        raise ProtocolViolation("unknown reply type byte %r in line %r" % (t, line[:80]))

    def read_until_closed(self, timeout=5.0):
        """Reads raw bytes until the server closes; returns (bytes, closed)."""
        deadline = time.monotonic() + timeout
        out = bytes(self.buf[self.pos:])
        self.buf, self.pos = bytearray(), 0
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, min(0.2, deadline - time.monotonic())))
            try:
                data = self.sock.recv(1 << 16)
            except socket.timeout:
                continue
            except OSError:
                return out, True
            if not data:
                return out, True
            out += data
        self.sock.settimeout(self.timeout)
        return out, False

    def read_available(self, wait=0.3):
        """Reads whatever arrives within `wait` seconds; returns (bytes, closed)."""
        deadline = time.monotonic() + wait
        out = bytes(self.buf[self.pos:])
        self.buf, self.pos = bytearray(), 0
        closed = False
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(1 << 16)
            except socket.timeout:
                break
            except OSError:
                closed = True
                break
            if not data:
                closed = True
                break
            out += data
        self.sock.settimeout(self.timeout)
        return out, closed


def map_to_dict(reply):
    """Turns a RESP3 map or a RESP2 flat key/value array into {bytes: reply}."""
    t, v = reply
    if t == '%':
        return {k[1]: val for k, val in v}
    if t == '*' and v is not None and len(v) % 2 == 0:
        return {v[i][1]: v[i + 1] for i in range(0, len(v), 2)}
    raise ValueError("not a map reply: %s" % show(reply))
