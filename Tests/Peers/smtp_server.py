#!/usr/bin/env python3
"""An SMTP server for Herald's tests, built on aiosmtpd (an independent implementation).

Listens on 127.0.0.1 (a free port, printed as "PORT <n>" once ready), accepts every message and
appends it to --record as a JSON line {"from", "to": [...], "data"}. --script names a JSON file
(re-read on every RCPT) mapping a recipient to the replies its successive RCPT attempts get, e.g.
{"busy@example.org": ["450 4.2.1 Mailbox busy", "250 OK"], "nobody@example.org": ["550 5.1.1 No such user"]};
a recipient not in the script (or past the end of its list) gets 250. "drop" as a reply closes the
connection; "slow <seconds> <reply>" answers <reply> after a pause. Runs until its standard input closes.
With HERALD_SINK_TRANSACTIONS=<file> in its environment it also appends every command it reads and every
reply it sends, per connection, as JSON lines {"session", "in" | "out"} (for finding out, when a client
credits a reply to the wrong command, what the conversation really was).
"""
import argparse, asyncio, json, os, sys, threading
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

parser = argparse.ArgumentParser()
parser.add_argument("--record", required=True)
parser.add_argument("--script")
parser.add_argument("--tls", action="store_true", help="offer STARTTLS with a fresh self-signed certificate")
parser.add_argument("--broken-tls", action="store_true", help="offer STARTTLS, answer 220 to it, then send garbage instead of a handshake")
args = parser.parse_args()
attempts = {}
lock = threading.Lock()
# Connections: a serial number for each, and how many are open now (both recorded with every message).
sessions = {"serial": 0, "open": 0}


def script():
    if not args.script or not os.path.exists(args.script):
        return {}
    with open(args.script) as handle:
        return json.load(handle)


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with lock:
            replies = script().get(address.lower(), [])
            count = attempts.get(address.lower(), 0)
            attempts[address.lower()] = count + 1
        reply = replies[count] if count < len(replies) else "250 OK"
        if reply.startswith("slow "):
            _, seconds, reply = reply.split(" ", 2)
            await asyncio.sleep(float(seconds))
        if reply == "drop":
            session.transport.close()
            return "421 closing"
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server, session, envelope):
        with lock:
            with open(args.record, "a") as out:
                out.write(json.dumps({"from": envelope.mail_from, "to": envelope.rcpt_tos, "tls": session.ssl is not None,
                                      "session": getattr(server, "serial", 0), "open": sessions["open"],
                                      "data": envelope.original_content.decode("utf-8", "replace")}) + "\n")
        return "250 2.0.0 OK queued"


def tls_context():
    import datetime, ssl, tempfile
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sink.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    directory = tempfile.mkdtemp()
    with open(directory + "/cert.pem", "wb") as out:
        out.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(directory + "/key.pem", "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory + "/cert.pem", directory + "/key.pem")
    return context


TLS = tls_context() if args.tls or args.broken_tls else None


TRANSACTIONS = open(os.environ["HERALD_SINK_TRANSACTIONS"], "a", buffering=1) if os.environ.get("HERALD_SINK_TRANSACTIONS") else None


def trace(session, direction, text):
    if TRANSACTIONS is not None:
        with lock:
            TRANSACTIONS.write(json.dumps({"session": session, direction: text}) + "\n")


class CountingSMTP(SMTP):
    async def push(self, status):
        trace(getattr(self, "serial", 0), "out", status if isinstance(status, str) else status.decode("utf-8", "replace"))
        return await super().push(status)

    async def smtp_MAIL(self, arg):
        trace(self.serial, "in", f"MAIL {arg}")
        return await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg):
        trace(self.serial, "in", f"RCPT {arg}")
        return await super().smtp_RCPT(arg)

    async def smtp_DATA(self, arg):
        trace(self.serial, "in", "DATA")
        return await super().smtp_DATA(arg)

    async def smtp_RSET(self, arg):
        trace(self.serial, "in", "RSET")
        return await super().smtp_RSET(arg)

    async def smtp_QUIT(self, arg):
        trace(self.serial, "in", "QUIT")
        return await super().smtp_QUIT(arg)

    def connection_made(self, transport):
        with lock:
            sessions["serial"] += 1
            sessions["open"] += 1
            self.serial = sessions["serial"]
        super().connection_made(transport)

    def connection_lost(self, error):
        with lock:
            sessions["open"] -= 1
        super().connection_lost(error)

    async def smtp_STARTTLS(self, arg):
        if not args.broken_tls:
            return await super().smtp_STARTTLS(arg)
        await self.push("220 Ready to start TLS")
        self.transport.write(b"this is not a TLS handshake\r\n" * 4)


class Server(Controller):
    def factory(self):
        return CountingSMTP(self.handler, hostname="sink.test", enable_SMTPUTF8=False, tls_context=TLS)


import socket
probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()
controller = Server(Handler(), hostname="127.0.0.1", port=port)
controller.start()
print(f"PORT {port}", flush=True)
try:
    sys.stdin.read()
finally:
    controller.stop()
