#!/usr/bin/env python3
"""A webhook receiver for Herald's tests: a small HTTP/1.1 server on asyncio (standard library only).

Listens on 127.0.0.1 (a free port, printed as "PORT <n>" once ready) and runs until its standard input
closes (or SIGTERM/SIGINT), flushing what it recorded first. Keep-alive, pipelining, Content-Length and
chunked request bodies, "Expect: 100-continue".

Normal mode: every request, once fully read and before it is answered, is appended to --record as a
JSON line {"path", "method", "headers": {lower-case name: value}, "body", "at": unix seconds, "status":
the status answered (null for "hang" and "close"), "attempt": the n-th request on that path, from 1};
the file is flushed after every line. "path" is the request target as sent (with any query string).

--script names a JSON file (re-read when it changes) mapping a path to the replies its successive
requests get, e.g. {"/a": ["500", "500"], "/b": {"always": "410"}}; a path past the end of its list,
or not in the script, gets 200 "ok". A target with a query string falls back to its path without one.
Attempts are counted from the start of the peer (rewriting the script does not reset them). Replies:
  "200", "500", "410"          that status, body "status <code>"
  "200 some text"              that status, body "some text" (any status but 3xx, 429 and 503)
  "301 https://example.org/"   a redirect (any 3xx) with that Location
  "429 5", "503 5"             with "Retry-After: 5" (the rest of the reply, verbatim)
  "slow <seconds> <reply>"     <reply> after a pause (later pipelined requests wait for it)
  "hang"                       never answer; keep the connection open until the client closes it
  "close"                      close the connection without answering

--count-only (for benchmarks): nothing else is recorded; for each request the JSON body's top-level
"timestamp" (RFC 3339, e.g. 2026-11-26T03:40:01.123Z) is parsed and a line "<arrival> <event>" (unix
seconds; "nan" for a body without a readable timestamp) is appended to --record, buffered and flushed
at least every 0.2 s and at exit. Every request gets 200 "ok".
"""
import argparse, asyncio, calendar, json, os, signal, sys, threading, time
from http import HTTPStatus

parser = argparse.ArgumentParser()
parser.add_argument("--record", required=True)
parser.add_argument("--script")
parser.add_argument("--count-only", action="store_true")
args = parser.parse_args()

MAX_HEAD = 64 * 1024
now = time.time
dumps = json.dumps
loads = json.loads


# -- replies -------------------------------------------------------------------------------------

def reason(code):
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Status"


def response(code, body, extra=(), close=False):
    body = body.encode("utf-8")
    head = [f"HTTP/1.1 {code} {reason(code)}", "Content-Type: text/plain; charset=utf-8", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in extra]
    if close:
        head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


OK = response(200, "ok")
OK_CLOSE = response(200, "ok", close=True)


class Reply:
    """A parsed script entry: kind is "answer", "hang" or "close"; delay is the "slow" pause."""
    __slots__ = ("kind", "status", "bytes", "bytes_close", "delay")

    def __init__(self, kind, status=None, extra=(), body="", delay=0.0):
        self.kind, self.status, self.delay = kind, status, delay
        if kind == "answer":
            self.bytes = response(status, body, extra)
            self.bytes_close = response(status, body, extra, close=True)


DEFAULT = Reply("answer", 200, body="ok")
replies_parsed = {}


def parse_reply(text):
    reply = replies_parsed.get(text)
    if reply is not None:
        return reply
    words = text.strip().split(" ", 1)
    if words[0] == "slow":
        seconds, inner = words[1].split(" ", 1)
        inner = parse_reply(inner)
        reply = Reply(inner.kind, inner.status, delay=float(seconds) + inner.delay)
        if inner.kind == "answer":
            reply.bytes, reply.bytes_close = inner.bytes, inner.bytes_close
    elif words[0] == "hang":
        reply = Reply("hang")
    elif words[0] == "close":
        reply = Reply("close")
    else:
        code = int(words[0])
        rest = words[1].strip() if len(words) > 1 else ""
        if not rest:
            reply = Reply("answer", code, body=f"status {code}")
        elif 300 <= code < 400:
            reply = Reply("answer", code, [("Location", rest)], f"status {code}")
        elif code in (429, 503):
            reply = Reply("answer", code, [("Retry-After", rest)], f"status {code}")
        else:
            reply = Reply("answer", code, body=rest)
    replies_parsed[text] = reply
    return reply


script_state = {"key": None, "script": {}}


def current_script():
    """The script, re-read when the file's mtime, size or inode changes."""
    if not args.script:
        return {}
    try:
        info = os.stat(args.script)
    except FileNotFoundError:
        script_state["key"], script_state["script"] = None, {}
        return {}
    key = (info.st_mtime_ns, info.st_size, info.st_ino)
    if key != script_state["key"]:
        try:
            with open(args.script) as handle:
                script_state["script"] = json.load(handle)
            script_state["key"] = key
        except (OSError, ValueError) as error:  # caught mid-write by a non-atomic writer: keep the old one
            print(f"webhook_receiver: script not read: {error}", file=sys.stderr, flush=True)
    return script_state["script"]


attempts = {}


def choose(path):
    """(attempt, Reply) for the next request on path."""
    attempt = attempts.get(path, 0) + 1
    attempts[path] = attempt
    script = current_script()
    entry = script.get(path)
    if entry is None and "?" in path:
        entry = script.get(path.split("?", 1)[0])
    if entry is None:
        return attempt, DEFAULT
    if isinstance(entry, dict):
        return attempt, parse_reply(entry["always"])
    if attempt <= len(entry):
        return attempt, parse_reply(entry[attempt - 1])
    return attempt, DEFAULT


# -- recording -----------------------------------------------------------------------------------

record = open(args.record, "a", encoding="utf-8", buffering=1 << 16)
pending = []  # count-only lines not yet written


def flush_counts():
    if pending:
        record.write("".join(pending))
        pending.clear()
    record.flush()


timestamp_bases = {}


def parse_timestamp(text):
    """Unix seconds of an RFC 3339 date-time (fraction and offset optional; no offset means UTC)."""
    prefix = text[:19]
    base = timestamp_bases.get(prefix)
    if base is None:
        if len(prefix) != 19 or prefix[4] != "-" or prefix[7] != "-" or prefix[10] not in "Tt " or prefix[13] != ":" or prefix[16] != ":":
            raise ValueError(text)
        base = calendar.timegm((int(prefix[0:4]), int(prefix[5:7]), int(prefix[8:10]),
                                int(prefix[11:13]), int(prefix[14:16]), int(prefix[17:19]), 0, 0, 0))
        if len(timestamp_bases) > 4096:
            timestamp_bases.clear()
        timestamp_bases[prefix] = base
    rest = text[19:]
    value = float(base)
    if rest[:1] in (".", ","):
        end = 1
        while end < len(rest) and rest[end].isdigit():
            end += 1
        if end > 1:
            value += float("0." + rest[1:end])
        rest = rest[end:]
    if rest in ("", "Z", "z"):
        return value
    if rest[0] not in "+-":
        raise ValueError(text)
    digits = rest[1:].replace(":", "")
    if len(digits) not in (2, 4) or not digits.isdigit():
        raise ValueError(text)
    offset = int(digits[:2]) * 3600 + (int(digits[2:]) * 60 if len(digits) == 4 else 0)
    return value - offset if rest[0] == "+" else value + offset


def event_time(body):
    try:
        return parse_timestamp(loads(body)["timestamp"])
    except Exception:  # any malformed body: still counted, with no event time
        return float("nan")


# -- HTTP ----------------------------------------------------------------------------------------

connections = set()


class BadRequest(Exception):
    pass


class HTTPConnection(asyncio.Protocol):
    __slots__ = ("transport", "buffer", "head", "length", "chunked", "chunk_state", "chunk_left", "chunks",
                 "waiting", "hung", "closed")

    def connection_made(self, transport):
        self.transport = transport
        self.buffer = bytearray()
        self.head = None  # (method, target, headers, keep_alive) of the request being read
        self.length = 0
        self.chunked = False
        self.chunk_state = "size"
        self.chunk_left = 0
        self.chunks = []
        self.waiting = False  # a "slow" answer is pending: later requests wait
        self.hung = False
        self.closed = False
        connections.add(self)

    def connection_lost(self, error):
        self.closed = True
        connections.discard(self)

    def data_received(self, data):
        if self.hung or self.closed:
            return
        self.buffer += data
        if not self.waiting:
            try:
                self.process()
            except (BadRequest, ValueError, UnicodeDecodeError) as error:
                self.fail(str(error))

    def fail(self, message):
        if not self.transport.is_closing():
            self.transport.write(response(400, f"bad request: {message}", close=True))
            self.transport.close()
        self.closed = True

    def process(self):
        buffer = self.buffer
        while not self.closed and not self.waiting and not self.hung:
            if self.head is None:
                while buffer[:2] == b"\r\n":  # stray line breaks between requests
                    del buffer[:2]
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(buffer) > MAX_HEAD:
                        raise BadRequest("header too large")
                    return
                self.start(bytes(buffer[:end]))
                del buffer[:end + 4]
            if self.chunked:
                body = self.read_chunked()
                if body is None:
                    return
            else:
                length = self.length
                if len(buffer) < length:
                    return
                body = bytes(buffer[:length])
                del buffer[:length]
            head, self.head = self.head, None
            self.handle(head, body)

    def start(self, raw):
        lines = raw.decode("latin-1").split("\r\n")
        request = lines[0].split(" ")
        if len(request) != 3 or not request[2].startswith("HTTP/1."):
            raise BadRequest(f"request line {lines[0]!r}")
        method, target, version = request
        headers = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise BadRequest(f"header line {line!r}")
            name = name.strip().lower()
            value = value.strip()
            headers[name] = headers[name] + ", " + value if name in headers else value
        connection = headers.get("connection", "").lower()
        keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if self.chunked:
            self.chunk_state, self.chunk_left, self.chunks = "size", 0, []
        else:
            self.length = int(headers.get("content-length", "0"))
            if self.length < 0:
                raise BadRequest("negative Content-Length")
        if headers.get("expect", "").lower() == "100-continue":
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.head = (method, target, headers, keep_alive)

    def read_chunked(self):
        """The whole chunked body once it has arrived (consuming it), else None."""
        buffer = self.buffer
        while True:
            if self.chunk_state == "size":
                end = buffer.find(b"\r\n")
                if end < 0:
                    return None
                size = int(bytes(buffer[:end]).split(b";", 1)[0].strip(), 16)
                del buffer[:end + 2]
                self.chunk_state, self.chunk_left = ("data", size) if size else ("trailer", 0)
            elif self.chunk_state == "data":
                size = self.chunk_left
                if len(buffer) < size + 2:
                    return None
                if buffer[size:size + 2] != b"\r\n":
                    raise BadRequest("chunk not followed by CRLF")
                self.chunks.append(bytes(buffer[:size]))
                del buffer[:size + 2]
                self.chunk_state = "size"
            else:  # trailer lines up to an empty one
                end = buffer.find(b"\r\n")
                if end < 0:
                    return None
                del buffer[:end + 2]
                if end == 0:
                    body = b"".join(self.chunks)
                    self.chunks = []
                    self.chunk_state = "size"
                    return body

    def handle(self, head, body):
        method, target, headers, keep_alive = head
        if args.count_only:
            pending.append(f"{now():.6f} {event_time(body):.6f}\n")
            self.transport.write(OK if keep_alive else OK_CLOSE)
            if not keep_alive:
                self.transport.close()
                self.closed = True
            return
        at = now()
        attempt, reply = choose(target)
        record.write(dumps({"path": target, "method": method, "headers": headers,
                            "body": body.decode("utf-8", "replace"), "at": at,
                            "status": reply.status if reply.kind == "answer" else None, "attempt": attempt}) + "\n")
        record.flush()
        if reply.delay > 0:
            self.waiting = True
            asyncio.get_running_loop().call_later(reply.delay, self.answer, reply, keep_alive)
        else:
            self.answer(reply, keep_alive)

    def answer(self, reply, keep_alive):
        self.waiting = False
        if self.closed or self.transport.is_closing():
            self.closed = True
            return
        if reply.kind == "hang":
            self.hung = True
            self.buffer.clear()
            return
        if reply.kind == "close" or not keep_alive:
            if reply.kind == "answer":
                self.transport.write(reply.bytes_close)
            self.transport.close()
            self.closed = True
            return
        self.transport.write(reply.bytes)
        if self.buffer:  # requests pipelined behind a slow answer
            try:
                self.process()
            except (BadRequest, ValueError, UnicodeDecodeError) as error:
                self.fail(str(error))


async def main():
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def watch_stdin():
        try:  # the raw descriptor: a buffered reader's lock would trouble the interpreter's shutdown
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        loop.call_soon_threadsafe(stopping.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)

    def flush_periodically():
        flush_counts()
        loop.call_later(0.2, flush_periodically)

    if args.count_only:
        loop.call_later(0.2, flush_periodically)
    server = await loop.create_server(HTTPConnection, "127.0.0.1", 0, backlog=1024)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    await stopping.wait()
    flush_counts()
    server.close()
    for connection in list(connections):
        connection.transport.abort()
    await asyncio.sleep(0)
    flush_counts()
    record.close()


asyncio.run(main())
