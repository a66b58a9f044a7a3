#!/usr/bin/env python3
"""The Python pieces of ops/bench (clients and the sink sample check), one subcommand each:

  smtp-submit PORT SESSIONS SECONDS [--user U --password P] [--label TEXT]
      SESSIONS persistent SMTP sessions (one process each, smtplib), each sending one message after
      another (one recipient, the same ~1 KB text) for SECONDS; AUTH PLAIN first when --user is given,
      nothing else differs. Prints "<label>: N messages/s accepted (…)" and the latency from MAIL to
      the final dot's 250, then a last line "RESULT <accepted> <refused> <p99 ms>".

  rest-send BASE TOKEN COUNT CONNECTIONS BODY-FILE
      Exactly COUNT POST /v1/mail/single requests (the JSON in BODY-FILE) over CONNECTIONS keep-alive
      HTTP/1.1 connections (asyncio, raw sockets: cheap on the cores it shares with Herald). Prints
      "RESULT <2xx> <other> <seconds> <first non-2xx answer or ->".

  sink-check DUMP MARKER RECORDS SAMPLE
      Reads an smtp-sink -D dump (each message preceded by the line MARKER, see smtp-sink -S), counts the
      messages and checks an evenly spread sample of about SAMPLE of them with dkimpy: a message is valid
      when one of its rsa-sha256 DKIM signatures verifies against the DNS TXT records in RECORDS ("HOST
      VALUE" lines, each answered for its own name only; "-" checks nothing). Prints "RESULT <messages>
      <sampled> <verified> <mean size without DKIM-Signature> <first failure or ->".
"""
import argparse
import asyncio
import re
import sys
import time

MESSAGE = ("From: app@bench.example\r\nTo: user@example.org\r\nSubject: Your code\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n\r\nCode: 123456\r\n" + "x" * 900 + "\r\n")


def smtp_session(args):
    import smtplib
    port, seconds, user, password = args
    latencies, refused = [], 0
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            s.ehlo("client.bench.example")
            if user:
                s.login(user, password)
            end = time.time() + seconds
            while time.time() < end:
                started = time.perf_counter()
                try:
                    s.sendmail("app@bench.example", ["user@example.org"], MESSAGE)
                    latencies.append(time.perf_counter() - started)
                except smtplib.SMTPServerDisconnected:
                    refused += 1
                    break
                except smtplib.SMTPException:
                    refused += 1
    except (OSError, smtplib.SMTPException) as error:  # the session failed: counted as one refusal
        print(f"a session failed: {error}", file=sys.stderr)
        refused += 1
    return latencies, refused


def smtp_submit(a):
    import multiprocessing
    with multiprocessing.Pool(a.sessions) as pool:
        results = pool.map(smtp_session, [(a.port, a.seconds, a.user, a.password)] * a.sessions)
    latencies = sorted(l for r in results for l in r[0])
    refused = sum(r[1] for r in results)
    if not latencies:
        print(f"{a.label}: no message was accepted ({refused} refused)")
        print(f"RESULT 0 {refused} 0")
        return 1
    p50, p99 = latencies[len(latencies) // 2] * 1000, latencies[int(len(latencies) * 0.99)] * 1000
    print(f"{a.label}: {len(latencies) / a.seconds:.0f} messages/s accepted ({len(latencies)} in {a.seconds:g} s, {refused} refused)")
    print(f"  latency (MAIL to the final 250) p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(f"RESULT {len(latencies)} {refused} {p99:.1f}")
    return 0


async def rest_send_async(a):
    from urllib.parse import urlsplit
    url = urlsplit(a.base)
    body = open(a.body_file, "rb").read()
    request = (f"POST /v1/mail/single HTTP/1.1\r\nHost: {url.hostname}:{url.port}\r\nAuthorization: Bearer {a.token}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    left = [a.count]
    counts = {"ok": 0, "other": 0, "first": None}

    async def connection():
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        try:
            while left[0] > 0:
                left[0] -= 1
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                match = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                answer = await reader.readexactly(int(match.group(1))) if match else b""
                if 200 <= status < 300:
                    counts["ok"] += 1
                else:
                    counts["other"] += 1
                    counts["first"] = counts["first"] or f"{status} {answer[:200].decode(errors='replace')}"
                if re.search(rb"(?i)\r\nconnection: *close", head):
                    writer.close()
                    reader, writer = await asyncio.open_connection(url.hostname, url.port)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(a.connections)))
    seconds = time.perf_counter() - started
    first = (counts["first"] or "-").replace("\n", " ")
    print(f"RESULT {counts['ok']} {counts['other']} {seconds:.3f} {first}")
    return 0


def records(path):
    """The DNS TXT records in a file of "HOST VALUE" lines: {host (lower case, no final dot): value}."""
    found = {}
    for line in open(path):
        host, _, value = line.strip().partition(" ")
        if host:
            found[host.rstrip(".").lower()] = value.strip().encode()
    return found


SINK_LINES = ("X-Client-Addr:", "X-Client-Proto:", "X-Helo-Args:", "X-Mail-Args:", "X-Rcpt-Args:")


def sink_messages(path, marker):
    """The messages of an smtp-sink dump, each as the bytes received (CRLF lines), less the sink's own
    X- records and Received header."""
    message = None
    with open(path, "rb") as dump:
        for line in dump:
            line = line.rstrip(b"\r\n")
            if line == marker:
                if message is not None:
                    yield message
                message = []
                continue
            if message is not None:
                message.append(line)
    if message is not None:
        yield message


def strip_sink_header(lines):
    i = 0
    while i < len(lines) and lines[i].decode(errors="replace").startswith(SINK_LINES):
        i += 1
    if i < len(lines) and lines[i].startswith(b"Received:"):  # the sink's own, a folded header
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            i += 1
    return b"".join(line + b"\r\n" for line in lines[i:])


def without_signature(message):
    head, _, body = message.partition(b"\r\n\r\n")
    kept = re.sub(rb"(?im)^DKIM-Signature:.*\r\n(?:[ \t].*\r\n)*", b"", head + b"\r\n")
    return kept + b"\r\n" + body


def sink_check(a):
    marker = a.marker.encode()
    import os
    count = 0
    if os.path.exists(a.dump):
        with open(a.dump, "rb") as dump:
            count = sum(1 for line in dump if line.rstrip(b"\r\n") == marker)
    step = max(1, count // max(1, a.sample))
    sample = [strip_sink_header(m) for i, m in enumerate(sink_messages(a.dump, marker)) if i % step == 0] if count else []
    sizes = [len(without_signature(m)) for m in sample]
    verified, failure = 0, None
    if a.records != "-":
        import dkim
        published = records(a.records)

        def dnsfunc(name, timeout=5):  # the published records, each under its own name only
            wanted = name.decode() if isinstance(name, bytes) else name
            return published.get(wanted.rstrip(".").lower())

        for message in sample:
            # Valid: one of its DKIM-Signature headers is RSA-SHA256 and verifies (a second signature of another
            # kind, e.g. Ed25519, neither counts nor hinders).
            checker, ok, why = dkim.DKIM(message), False, None
            headers = message.partition(b"\r\n\r\n")[0]
            signatures = len(re.findall(rb"(?im)^DKIM-Signature:", headers))
            for index in range(signatures):
                try:
                    ok = checker.verify(idx=index, dnsfunc=dnsfunc) and checker.signature_fields.get(b"a") == b"rsa-sha256"
                except Exception as error:  # dkimpy raises on malformed signatures
                    why = f"{type(error).__name__}: {error}"
                if ok:
                    break
            if ok:
                verified += 1
            elif failure is None:
                failure = (why or ("no valid rsa-sha256 signature" if signatures else "no DKIM-Signature")) + \
                    "; headers: " + headers[:300].decode(errors="replace")
    mean = sum(sizes) / len(sizes) if sizes else 0
    print(f"RESULT {count} {len(sample)} {verified} {mean:.0f} {(failure or '-').replace(chr(10), ' ')}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("smtp-submit")
    p.add_argument("port", type=int)
    p.add_argument("sessions", type=int)
    p.add_argument("seconds", type=float)
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--label", default="smtp submission")
    p = sub.add_parser("rest-send")
    p.add_argument("base")
    p.add_argument("token")
    p.add_argument("count", type=int)
    p.add_argument("connections", type=int)
    p.add_argument("body_file")
    p = sub.add_parser("sink-check")
    p.add_argument("dump")
    p.add_argument("marker")
    p.add_argument("records")
    p.add_argument("sample", type=int)
    a = parser.parse_args()
    if a.command == "smtp-submit":
        return smtp_submit(a)
    if a.command == "rest-send":
        return asyncio.run(rest_send_async(a))
    return sink_check(a)


if __name__ == "__main__":
    sys.exit(main())
