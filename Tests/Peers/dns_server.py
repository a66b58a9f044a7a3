#!/usr/bin/env python3
"""A small authoritative DNS server for Herald's tests, built on dnslib (an independent encoder).

Serves the records of a JSON zone (re-read on every query) over UDP and TCP on one 127.0.0.1 port and prints "PORT <n>" once
ready. Test behaviours: UDP answers larger than --truncate-over bytes come back truncated (TC, no
records) so the client must retry over TCP; the first --drop-first UDP queries are ignored (timeouts);
names in --servfail answer SERVFAIL. Each query is logged to stderr as "udp|tcp NAME TYPE".

Zone: {"name": [["TXT", ["str", ...], ttl], ["MX", [pref, "host"], ttl], ["A", "1.2.3.4", ttl],
               ["AAAA", "::1", ttl], ["CNAME", "target", ttl]]}
"""
import argparse, json, socket, struct, sys, threading
from dnslib import AAAA, A, CNAME, MX, QTYPE, RCODE, RR, SOA, TXT, DNSRecord

parser = argparse.ArgumentParser()
parser.add_argument("--zone", required=True)
parser.add_argument("--truncate-over", type=int, default=0)
parser.add_argument("--drop-first", type=int, default=0)
parser.add_argument("--servfail", action="append", default=[])
args = parser.parse_args()


def load_zone():
    # Read on every query, so a test publishes or removes records by rewriting the file.
    with open(args.zone) as handle:
        return {k.lower().rstrip("."): v for k, v in json.load(handle).items()}

dropped = 0
lock = threading.Lock()


def rdata(kind, value):
    if kind == "TXT":
        return TXT([s.encode() for s in value])
    if kind == "MX":
        return MX(value[1], value[0])
    if kind == "A":
        return A(value)
    if kind == "AAAA":
        return AAAA(value)
    if kind == "CNAME":
        return CNAME(value)
    raise ValueError(kind)


def answer(data, transport):
    request = DNSRecord.parse(data)
    reply = request.reply()
    zone = load_zone()
    qname = str(request.q.qname).lower().rstrip(".")
    qtype = QTYPE[request.q.qtype]
    print(f"{transport} {qname} {qtype}", file=sys.stderr, flush=True)
    if qname in args.servfail:
        reply.header.rcode = RCODE.SERVFAIL
        return reply.pack()
    name, seen = qname, set()
    while True:
        records = zone.get(name)
        if records is None:
            if name == qname:
                reply.header.rcode = RCODE.NXDOMAIN
            break
        cname = [r for r in records if r[0] == "CNAME"]
        if cname and qtype != "CNAME" and name not in seen:
            seen.add(name)
            reply.add_answer(RR(name, QTYPE.CNAME, rdata=rdata("CNAME", cname[0][1]), ttl=cname[0][2]))
            name = cname[0][1].lower().rstrip(".")
            continue
        for kind, value, ttl in records:
            if kind == qtype:
                reply.add_answer(RR(name, getattr(QTYPE, kind), rdata=rdata(kind, value), ttl=ttl))
        break
    if not reply.rr:
        reply.add_auth(RR("test", QTYPE.SOA, rdata=SOA("ns.test", "hostmaster.test", (1, 3600, 600, 86400, 30)), ttl=300))
    packed = reply.pack()
    if transport == "udp" and args.truncate_over and len(packed) > args.truncate_over:
        reply.rr = []
        reply.header.tc = 1
        packed = reply.pack()
    return packed


# A free UDP port whose TCP twin is free too (another test's listener may hold it: then try another).
for _ in range(100):
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    port = udp.getsockname()[1]
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        tcp.bind(("127.0.0.1", port))
        break
    except OSError:
        udp.close()
        tcp.close()
else:
    sys.exit("no free port pair for UDP and TCP")
tcp.listen(16)


def serve_udp():
    global dropped
    while True:
        data, peer = udp.recvfrom(4096)
        with lock:
            if dropped < args.drop_first:
                dropped += 1
                print(f"udp dropped", file=sys.stderr, flush=True)
                continue
        try:
            udp.sendto(answer(data, "udp"), peer)
        except Exception as error:  # a malformed query gets no answer
            print(f"udp error {error}", file=sys.stderr, flush=True)


def serve_tcp_connection(conn):
    with conn:
        head = conn.recv(2, socket.MSG_WAITALL)
        if len(head) < 2:
            return
        (length,) = struct.unpack("!H", head)
        data = conn.recv(length, socket.MSG_WAITALL)
        reply = answer(data, "tcp")
        conn.sendall(struct.pack("!H", len(reply)) + reply)


def serve_tcp():
    while True:
        conn, _ = tcp.accept()
        threading.Thread(target=serve_tcp_connection, args=(conn,), daemon=True).start()


threading.Thread(target=serve_udp, daemon=True).start()
threading.Thread(target=serve_tcp, daemon=True).start()
print(f"PORT {port}", flush=True)
try:
    sys.stdin.read()  # run until the test closes our stdin
except KeyboardInterrupt:
    pass
