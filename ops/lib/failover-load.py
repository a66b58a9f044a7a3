#!/usr/bin/env python3
"""The client and the bookkeeping of ops/failover-test (Python's standard library only).

  failover-load.py wait-ready BASE PID            waits (60 s at most) until GET BASE/readyz answers 200; fails if PID exits
  failover-load.py token BASE KEY_ID SECRET       prints a JWT of POST /v1/auth/token
  failover-load.py domain BASE TOKEN NAME         POST /v1/domains {name} (the caller marks it verified in the database)
  failover-load.py sender BASE TOKEN ADDRESS      POST /v1/senders {address, type: trigger}
  failover-load.py send BASE TOKEN ANSWERS --from ADDRESS [--rate 50] [--seconds 40] [--retry-ms 200] [--give-up 60] [--timeout 30]
      the steady load: message n (0, 1, …) is first tried at start + n / rate, for `seconds`, to r<n>@sink.example with
      the header Idempotency-Key: m<n>, each attempt on a new connection; an attempt answered 5xx or 429, or failing
      to connect, to read the answer or within `timeout` seconds, is tried again `retry-ms` after its end, with the same
      key and body, until a 2xx or `give-up` seconds after the message's first attempt (another answer ends it).
      Every attempt's end goes to ANSWERS as one line:
          END N ATTEMPT STATUS MS FIRST CODE RETRY_AFTER
      END and FIRST (the message's first attempt) in seconds since the epoch, STATUS the HTTP status or conn:<error>
      or timeout, MS the attempt's duration, CODE the problem+json code of a non-2xx answer (- if none), RETRY_AFTER
      the header's value (- if none). Returns when every message is settled.
  failover-load.py watch BASE OUT [PSQL ARG…]     until stopped: every 0.5 s the pool gauges of BASE/metrics to OUT ("TIME IN_USE WAITING"),
                                                  and every 2 s (with PSQL ARG…) the herald sessions of pg_stat_activity to OUT.activity
  failover-load.py missing ANSWERS SINK           prints "ACCEPTED MISSING": messages with a 2xx, and those of them not at
                                                  the sink yet (SINK: Tests/Peers/smtp_server.py's --record, JSON lines)
  failover-load.py report ANSWERS SINK --killed-at NS --writable-at NS --waited S --killed NAME --primary NAME
                                                  [--give-up 60] [--database TEXT] [--watch OUT]
      prints the report; exits 1 when an accepted message never reached the sink or a message got no 2xx.
"""
import argparse, collections, http.client, json, os, re, socket, sys, threading, time, urllib.error, urllib.request

RECIPIENT = re.compile(r"^r(\d+)@sink\.example$", re.IGNORECASE)


def call(base, method, path, body=None, token=None, timeout=30):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + token
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def expect(status, text, what, ok=(200, 201)):
    if status not in ok:
        sys.exit(f"{what} answered {status}: {text}")
    return json.loads(text) if text else None


def wait_ready(args):
    deadline = time.time() + 60
    while True:
        try:
            if call(args.base, "GET", "/readyz", timeout=5)[0] == 200:
                return
        except OSError:
            pass
        try:
            os.kill(args.pid, 0)
            with open(f"/proc/{args.pid}/stat") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                    raise OSError
        except OSError:
            sys.exit("herald serve exited before it was ready")
        if time.time() > deadline:
            sys.exit("herald serve was not ready within 60 s")
        time.sleep(0.2)


def token(args):
    result = expect(*call(args.base, "POST", "/v1/auth/token", {"accessKeyId": args.key_id, "accessKeySecret": args.secret}),
                    "POST /v1/auth/token", ok=(200,))
    print(result["token"])


def domain(args):
    expect(*call(args.base, "POST", "/v1/domains", {"name": args.name}, args.token), "POST /v1/domains")


def sender(args):
    expect(*call(args.base, "POST", "/v1/senders", {"address": args.address, "type": "trigger"}, args.token), "POST /v1/senders")


# --- the load ---

def send(args):
    host, _, port = args.base.split("//", 1)[1].rstrip("/").rpartition(":")
    port = int(port)
    count = int(round(args.rate * args.seconds))
    log = open(args.answers, "w", buffering=1 << 16)
    log.write("# END N ATTEMPT STATUS MS FIRST CODE RETRY_AFTER\n")
    lock = threading.Lock()
    outcome = {}  # n -> "ok" | "gave-up" | "refused <status>"

    def attempt(body, key):
        connection = http.client.HTTPConnection(host, port, timeout=args.timeout)
        code, retry_after = "-", "-"
        try:
            connection.request("POST", "/v1/mail/single", body=body,
                               headers={"Content-Type": "application/json", "Authorization": "Bearer " + args.token,
                                        "Idempotency-Key": key, "Connection": "close"})
            response = connection.getresponse()
            data = response.read()
            status = response.status
            retry_after = (response.getheader("Retry-After") or "-").replace(" ", "_")
            if not 200 <= status < 300:
                try:
                    code = str(json.loads(data).get("code") or "-").replace(" ", "_")
                except (ValueError, AttributeError):
                    code = "not-json"
        except (socket.timeout, TimeoutError):
            status = "timeout"
        except (OSError, http.client.HTTPException) as error:
            status = "conn:" + type(error).__name__
        finally:
            connection.close()
        return status, code, retry_after

    def message(n):
        body = json.dumps({"from": args.sender, "to": [f"r{n}@sink.example"], "subject": f"Failover test {n}",
                           "text": f"Message {n} of the failover test.", "html": f"<p>Message <b>{n}</b> of the failover test.</p>"})
        key = f"m{n}"
        first = time.time()
        tries = 0
        while True:
            tries += 1
            begun = time.time()
            status, code, retry_after = attempt(body, key)
            end = time.time()
            with lock:
                log.write(f"{end:.6f} {n} {tries} {status} {(end - begun) * 1000:.1f} {first:.6f} {code} {retry_after}\n")
            if isinstance(status, int) and 200 <= status < 300:
                result = "ok"
                break
            if isinstance(status, int) and status < 500 and status != 429:
                result = f"refused {status}"
                break
            if end - first >= args.give_up:
                result = "gave-up"
                break
            time.sleep(args.retry_ms / 1000)
        with lock:
            outcome[n] = result

    start = time.time() + 0.2
    threads = []
    for n in range(count):
        delay = start + n / args.rate - time.time()
        if delay > 0:
            time.sleep(delay)
        thread = threading.Thread(target=message, args=(n,), daemon=True)
        thread.start()
        threads.append(thread)
        if n % 50 == 0:
            threads = [t for t in threads if t.is_alive()]
    late = time.time() - (start + (count - 1) / args.rate)
    for thread in threads:
        thread.join()
    log.close()
    tally = collections.Counter(value.split()[0] for value in outcome.values())
    print(f"load: {count} messages in {args.seconds:g} s (the last first tried {late * 1000:.0f} ms late); "
          f"{tally['ok']} with a 2xx, {tally['gave-up']} gave up, {tally['refused']} refused for good", flush=True)


def watch(args):
    """Samples the pool gauges (and the database's sessions) until killed."""
    import signal, subprocess
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    out = open(args.out, "a", buffering=1)
    activity = open(args.out + ".activity", "a", buffering=1) if args.psql else None
    query = ("SELECT pid, state, coalesce(wait_event_type || ':' || wait_event, '-'), "
             "coalesce(round(extract(epoch FROM now() - xact_start)::numeric, 1)::text, '-'), "
             "left(regexp_replace(query, '\\s+', ' ', 'g'), 100) FROM pg_stat_activity "
             "WHERE usename = 'herald' AND pid <> pg_backend_pid() ORDER BY xact_start NULLS LAST")
    next_activity = 0.0
    while True:
        now = time.time()
        values = {}
        try:
            text = urllib.request.urlopen(args.base + "/metrics", timeout=2).read().decode()
            for line in text.splitlines():
                for name in ("herald_db_connections_in_use", "herald_db_connections_waiting"):
                    if line.startswith(name + " ") or line.startswith(name + "{"):
                        values[name] = line.rsplit(" ", 1)[1]
        except (OSError, ValueError) as error:
            values["error"] = type(error).__name__
        out.write(f"{now:.3f} {values.get('herald_db_connections_in_use', '-')} {values.get('herald_db_connections_waiting', '-')}"
                  f"{' ' + values['error'] if 'error' in values else ''}\n")
        if activity and now >= next_activity:
            next_activity = now + 2
            try:
                rows = subprocess.run(args.psql + ["-X", "-qAt", "-F", " | ", "-c", query], capture_output=True, text=True,
                                      timeout=5, env={**os.environ, "PGCONNECT_TIMEOUT": "2"})
                activity.write(f"== {now:.3f}\n{rows.stdout}{rows.stderr}")
            except subprocess.TimeoutExpired:
                activity.write(f"== {now:.3f}\n(psql timed out)\n")
        time.sleep(max(0.0, now + 0.5 - time.time()))


# --- bookkeeping ---

def read_answers(path):
    answers = []
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        end, n, tries, status, ms, first, code, retry_after = line.split()
        answers.append((float(end), int(n), int(tries), status, float(ms), float(first), code, retry_after))
    answers.sort()
    return answers


def ok(status):
    return status.isdigit() and 200 <= int(status) < 300


def read_sink(path):
    """Per n, how many times it arrived; and the messages whose recipient is not one of ours."""
    arrived, strangers = collections.Counter(), 0
    if not os.path.exists(path):
        return arrived, strangers
    for line in open(path):
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue  # the line being written
        for address in record.get("to", []):
            match = RECIPIENT.match(address)
            if match:
                arrived[int(match.group(1))] += 1
            else:
                strangers += 1
    return arrived, strangers


def missing(args):
    accepted = {a[1] for a in read_answers(args.answers) if ok(a[3])}
    arrived, _ = read_sink(args.sink)
    print(len(accepted), len(accepted - set(arrived)))


def report(args):
    answers = read_answers(args.answers)
    arrived, strangers = read_sink(args.sink)
    killed, writable = args.killed_at / 1e9, args.writable_at / 1e9
    rel = lambda t: f"{t - killed:+.2f} s"
    messages = sorted({a[1] for a in answers})
    first_try = {}
    for a in answers:
        first_try.setdefault(a[1], a[5])
    load_start = min(first_try.values()) if first_try else killed
    accepted = {a[1] for a in answers if ok(a[3])}
    failures = [a for a in answers if not ok(a[3])]
    by_status = collections.Counter(a[3] for a in failures)
    http_failures = {s: c for s, c in by_status.items() if s.isdigit()}
    conn_failures = {s: c for s, c in by_status.items() if not s.isdigit()}
    codes = collections.Counter(a[6] for a in failures if a[3].isdigit())
    no_retry_after = sum(1 for a in failures if a[3] == "503" and a[7] == "-")
    lines = []
    out = lines.append
    out(f"failover test report: {len(messages)} messages, first tried from {rel(load_start)} to {rel(max(first_try.values()))} "
        f"relative to the kill (the load started {killed - load_start:.1f} s before it)")
    out(f"  failover window (kill of {args.killed} -> {args.primary} takes writes, as ops/lib/failover.sh measures): "
        f"{writable - killed:.1f} s (herald_failover_wait_primary waited {args.waited} s after the kill returned)")
    http_text = ", ".join(f"{s}: {c}" for s, c in sorted(http_failures.items())) or "none"
    conn_text = ", ".join(f"{s[5:] if s.startswith('conn:') else s}: {c}" for s, c in sorted(conn_failures.items())) or "none"
    out(f"  requests refused: {sum(http_failures.values())} non-2xx answers ({http_text}), {sum(conn_failures.values())} connection "
        f"errors or timeouts ({conn_text}), in {len(answers)} attempts")
    if codes:
        out(f"    problem codes of the non-2xx answers: " + ", ".join(f"{c}: {n}" for c, n in codes.most_common()))
    if by_status.get("503"):
        out(f"    503 answers without Retry-After: {no_retry_after}")
    if failures:
        out(f"    the first refusal at {rel(failures[0][0])}, the last at {rel(failures[-1][0])}")
    after = [a for a in answers if ok(a[3]) and a[0] > killed]
    fresh = [a for a in after if a[5] > killed]
    out("  sends succeed again: first 2xx after the kill at " + (rel(after[0][0]) if after else "never") +
        "; first 2xx of a message first tried after the kill at " + (rel(fresh[0][0]) if fresh else "never") +
        (f" (message {fresh[0][1]}, first tried at {rel(fresh[0][5])})" if fresh else ""))
    # The longest run of consecutive failed answers (5xx, connection errors, timeouts), in the order they ended.
    best, run = None, []
    for a in answers:
        if ok(a[3]) or not (a[3].startswith("5") or not a[3].isdigit()):
            if run and (best is None or run[-1][0] - run[0][0] > best[-1][0] - best[0][0]):
                best = run
            run = []
        else:
            run.append(a)
    if run and (best is None or run[-1][0] - run[0][0] > best[-1][0] - best[0][0]):
        best = run
    if best:
        out(f"  longest stretch of failed answers (5xx, connection errors, timeouts; no 2xx in between): {best[-1][0] - best[0][0]:.2f} s, "
            f"from {rel(best[0][0])} to {rel(best[-1][0])}, {len(best)} answers")
    else:
        out("  longest stretch of failed answers: none")
    oks = [a[0] for a in answers if ok(a[3])]
    if len(oks) > 1:
        gap, at = max((b - a, a) for a, b in zip(oks, oks[1:]))
        out(f"  longest time without a 2xx answer: {gap:.2f} s (from {rel(at)})")
    if args.watch and os.path.exists(args.watch):
        samples = []
        for line in open(args.watch):
            parts = line.split()
            if len(parts) >= 3 and parts[1] != "-":
                samples.append((float(parts[0]), float(parts[1]), float(parts[2])))
        if samples:
            longest, begun = 0.0, None
            for t, _, waiting in samples:
                if waiting > 0 and begun is None:
                    begun = t
                elif waiting <= 0 and begun is not None:
                    longest, begun = max(longest, t - begun), None
            if begun is not None:
                longest = max(longest, samples[-1][0] - begun)
            # Once the load is over and everything delivered, nothing should hold a connection for long: the
            # fewest in use over the last 5 s of samples are leases that never ended.
            held = min(s[1] for s in samples if s[0] >= samples[-1][0] - 5)
            out(f"  database pool (every 0.5 s): at most {max(s[1] for s in samples):.0f} connections in use and {max(s[2] for s in samples):.0f} "
                f"transactions waiting for one; the longest time with one waiting: {longest:.1f} s; in use throughout the last 5 s "
                f"(after the drain): {held:.0f}" + (" (LEASES NEVER RETURNED?)" if held > 0 else ""))
    slow = max(answers, key=lambda a: a[4]) if answers else None
    if slow:
        out(f"  slowest attempt: {slow[4]:.0f} ms (message {slow[1]}, attempt {slow[2]}, {slow[3]}, ended at {rel(slow[0])}); "
            f"attempts over 1 s: {sum(1 for a in answers if a[4] > 1000)}, over 5 s: {sum(1 for a in answers if a[4] > 5000)}, "
            f"over 10 s: {sum(1 for a in answers if a[4] > 10000)}")
        for a in [a for a in answers if a[4] > 10000][:10]:
            out(f"    message {a[1]} attempt {a[2]}: {a[3]} after {a[4] / 1000:.1f} s, sent at {rel(a[0] - a[4] / 1000)}")
        latencies = sorted(a[4] for a in answers if ok(a[3]))
        if latencies:
            out(f"  2xx latency: p50 {latencies[len(latencies) // 2]:.0f} ms, p99 {latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]:.0f} ms")
    retried = {a[1] for a in answers if a[2] > 1}
    settle = {}
    for a in answers:
        if ok(a[3]):
            settle[a[1]] = a[0] - a[5]
    worst = max(settle.items(), key=lambda kv: kv[1]) if settle else None
    out(f"  messages accepted (a 2xx): {len(accepted)} of {len(messages)}; {len(retried)} needed more than one attempt"
        + (f" (most attempts: {max(a[2] for a in answers)}; longest from first attempt to 2xx: {worst[1]:.1f} s, message {worst[0]})" if worst else ""))
    lost = sorted(accepted - set(arrived))
    out(f"  messages lost (accepted, never at the sink): {len(lost)}" + (f": {', '.join(f'r{n}' for n in lost[:20])}" +
                                                                          (" …" if len(lost) > 20 else "") if lost else ""))
    duplicated = sorted(n for n, c in arrived.items() if c > 1)
    out(f"  messages duplicated at the sink (received more than once): {len(duplicated)}" +
        (": " + ", ".join(f"r{n} x{arrived[n]}" for n in duplicated[:20]) + (" …" if len(duplicated) > 20 else "") if duplicated else ""))
    unasked = sorted(set(arrived) - accepted)
    if unasked:
        out(f"  messages at the sink without a 2xx: {len(unasked)}: " + ", ".join(f"r{n}" for n in unasked[:20]))
    if strangers:
        out(f"  messages at the sink for other recipients: {strangers}")
    unanswered = sorted(set(messages) - accepted)
    ends = {}
    for a in answers:
        ends[a[1]] = a[3]
    out(f"  messages without a 2xx within {args.give_up:g} s: {len(unanswered)}" +
        (": " + ", ".join(f"r{n} (last {ends[n]})" for n in unanswered[:20]) if unanswered else ""))
    out(f"  at the sink: {sum(arrived.values())} messages for {len(arrived)} recipients")
    if args.database:
        out(f"  in the database at the end: {args.database}")
    failed = []
    if lost:
        failed.append(f"{len(lost)} accepted messages lost")
    if unanswered:
        failed.append(f"{len(unanswered)} messages without a 2xx")
    if not messages:
        failed.append("no message was sent")
    out("result: " + ("FAILED: " + "; ".join(failed) if failed else "passed (nothing lost, every message accepted)"))
    print("\n".join(lines))
    sys.exit(1 if failed else 0)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("wait-ready"); p.add_argument("base"); p.add_argument("pid", type=int); p.set_defaults(run=wait_ready)
    p = sub.add_parser("token"); p.add_argument("base"); p.add_argument("key_id"); p.add_argument("secret"); p.set_defaults(run=token)
    p = sub.add_parser("domain"); p.add_argument("base"); p.add_argument("token"); p.add_argument("name"); p.set_defaults(run=domain)
    p = sub.add_parser("sender"); p.add_argument("base"); p.add_argument("token"); p.add_argument("address"); p.set_defaults(run=sender)
    p = sub.add_parser("send")
    for name in ("base", "token", "answers"):
        p.add_argument(name)
    p.add_argument("--from", dest="sender", required=True)
    p.add_argument("--rate", type=float, default=50)
    p.add_argument("--seconds", type=float, default=40)
    p.add_argument("--retry-ms", type=float, default=200)
    p.add_argument("--give-up", type=float, default=60)
    p.add_argument("--timeout", type=float, default=30)
    p.set_defaults(run=send)
    p = sub.add_parser("watch"); p.add_argument("base"); p.add_argument("out"); p.add_argument("psql", nargs=argparse.REMAINDER)
    p.set_defaults(run=watch)
    p = sub.add_parser("missing"); p.add_argument("answers"); p.add_argument("sink"); p.set_defaults(run=missing)
    p = sub.add_parser("report")
    p.add_argument("answers"); p.add_argument("sink")
    p.add_argument("--killed-at", type=int, required=True)
    p.add_argument("--writable-at", type=int, required=True)
    p.add_argument("--waited", default="?")
    p.add_argument("--killed", default="?")
    p.add_argument("--primary", default="?")
    p.add_argument("--give-up", type=float, default=60)
    p.add_argument("--database", default="")
    p.add_argument("--watch", default="")
    p.set_defaults(run=report)
    args = parser.parse_args()
    if getattr(args, "rate", 1) <= 0:
        parser.error("--rate must be positive")
    args.run(args)


if __name__ == "__main__":
    main()
