#!/usr/bin/env python3
"""The Python pieces of ops/bench (clients and the sink sample check), one subcommand each:

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

  cpu-watch OUT [--start-file FILE] [--postgres POSTMASTER-PID]
      (With --start-file: from the moment FILE exists.) Until SIGTERM, samples every process's CPU time
      (/proc/PID/stat) and the machine's busy time (/proc/stat) every 0.2 s; then writes "GROUP SECONDS" lines
      to OUT: the CPU time each group used while it ran (herald (herald_api and herald_sched for the processes
      run as herald.api and herald.sched), postgres (with --postgres, only that postmaster and its children),
      client (wrk, smtp-source, smtp-submit, the Python clients), postfix, opendkim, sink (smtp-sink), other)
      and "machine" (busy time of all cores). A process that ended between two samples loses at most its last
      0.2 s; "unattributed" is what the machine used beyond the groups. Then the busiest command names of
      "other" ("other.NAME", at most five, each within "other") and "wall" (the seconds watched).
"""
import argparse
import asyncio
import os
import re
import signal
import sys
import time

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


GROUPS = {"herald": "herald", "postgres": "postgres", "wrk": "client", "smtp-source": "client", "smtp-submit": "client", "python3": "client",
          "smtp-sink": "sink", "opendkim": "opendkim"}
POSTFIX = {"master", "smtpd", "cleanup", "qmgr", "trivial-rewrite", "smtp", "pickup", "anvil", "bounce", "proxymap",
           "scache", "tlsmgr", "postdrop", "sendmail", "postqueue", "showq", "postlog", "postlogd"}


def process_times(postmaster=None):
    """{pid: (group, CPU seconds so far, command name)} of every process but this one; with postmaster (a pid),
    the postgres processes of other clusters are "other"."""
    tick, found, me = os.sysconf("SC_CLK_TCK"), {}, os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            text = open(f"/proc/{name}/stat").read()
        except OSError:
            continue
        comm, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        # The herald binary may be named herald-<commit> (HERALD_BENCH_BINARY); run as herald.<role> (`ops/bench scale`'s
        # symbolic links herald.api and herald.sched) it is the group herald_<role>.
        if comm.startswith("herald."):
            group = "herald_" + comm[len("herald."):]
        else:
            group = "postfix" if comm in POSTFIX else "herald" if comm.startswith("herald") else GROUPS.get(comm, "other")
        if group == "postgres" and postmaster and postmaster not in (int(name), int(rest[1])):
            group = "other"
        found[int(name)] = (group, (int(rest[11]) + int(rest[12])) / tick, comm)
    return found


def machine_busy():
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    busy = sum(fields[:3]) + sum(fields[5:8])  # user nice system, irq softirq steal (not idle, iowait)
    return busy / os.sysconf("SC_CLK_TCK")


def cpu_watch(a):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    while a.start_file and not os.path.exists(a.start_file) and not stop:
        time.sleep(0.02)
    start, busy_start, wall_start = process_times(a.postgres), machine_busy(), time.monotonic()
    latest = dict(start)
    while not stop:
        time.sleep(0.2)
        latest.update(process_times(a.postgres))
    totals, others = {}, {}
    for pid, (group, seconds, comm) in latest.items():
        base = start.get(pid)
        used = max(seconds - (base[1] if base and base[0] == group else 0), 0)
        totals[group] = totals.get(group, 0) + used
        if group == "other":
            name = re.sub(r"\s+", "_", comm) or "?"
            others[name] = others.get(name, 0) + used
    machine = machine_busy() - busy_start
    totals["unattributed"] = max(machine - sum(totals.values()), 0)
    totals["machine"] = machine
    # Who else used the cores (a shared machine's compiler, say): the five busiest command names of "other",
    # as other.NAME, and the seconds watched, as wall (machine / wall: how many cores were busy).
    for name, seconds in sorted(others.items(), key=lambda item: -item[1])[:5]:
        if seconds >= 0.05:
            totals["other." + name] = seconds
    totals["wall"] = time.monotonic() - wall_start
    with open(a.out, "w") as out:
        for group, seconds in sorted(totals.items()):
            out.write(f"{group} {seconds:.3f}\n")
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
    p = sub.add_parser("cpu-watch")
    p.add_argument("out")
    p.add_argument("--start-file")
    p.add_argument("--postgres", type=int)
    a = parser.parse_args()
    if a.command == "cpu-watch":
        return cpu_watch(a)
    if a.command == "rest-send":
        return asyncio.run(rest_send_async(a))
    return sink_check(a)


if __name__ == "__main__":
    sys.exit(main())
