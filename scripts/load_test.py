#!/usr/bin/env python3
"""Load test for `kvrag serve` (issue 15): the hostile and unlucky clients of
a serving deployment, each scenario bounded in time and count, loopback only.

  build/cli/kvrag index --model models/kvrag-demo --index /tmp/idx-load data/sample/corpus.jsonl
  build/cli/kvrag serve --index /tmp/idx-load --port 8080 &
  python3 scripts/load_test.py --port 8080

Scenarios (--only NAME to run one):
  slow      8 connections sending one header line every 2 s and 4 expensive
            asks ({"k":100,"mode":"concat"}), while /healthz is polled: every
            poll must answer within 1 s.
  deadline  an expensive ask with timeout_ms 200: 504 deadline_exceeded
            within 1 s.
  queue     more concurrent expensive asks than workers + queue: the excess
            gets 503 with Retry-After, at once.
  ingest    --ingest-docs short documents POSTed in requests of
            --ingest-batch while 2 clients ask: ask latency p50/p95/max.
  throughput  for each of --clients (1,2,4,8) concurrent clients, the same
            --asks questions of --questions (greedy), shared out among the
            clients, each asking its share in turn: every level does the same
            work (answers of a random-weight model differ in length from
            question to question). answers/s, generated tokens/s and latency
            p50/p95 (after one untimed round that warms the server's RAM
            cache), and every question must get the
            same answer at every concurrency. --answers FILE saves those
            answers, or, when FILE exists, checks them against it (run once
            against `kvrag serve --decode-batch 1`, once against the batched
            server: batched decoding must not change an answer).
            Not in the default run; --only throughput.
Prints one line per figure and exits 1 if a "done when" bound is missed.
Python standard library only.
"""
import argparse
import http.client
import json
import socket
import statistics
import sys
import threading
import time
import uuid

EXPENSIVE = {"question": "Which river flows through the capital?", "k": 100, "mode": "concat",
             "max_new_tokens": 64}
CHEAP = {"question": "Which river flows through the capital?"}


def request(port, method, path, body=None, timeout=120):
    """(status, headers dict, body text, seconds); status -1 on a connection error."""
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=data, headers=headers)
        res = conn.getresponse()
        text = res.read().decode("utf-8", "replace")
        return res.status, dict(res.getheaders()), text, time.monotonic() - start
    except (OSError, http.client.HTTPException) as e:
        return -1, {}, str(e), time.monotonic() - start
    finally:
        conn.close()


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100.0 * (len(ordered) - 1))))]


def health(port):
    status, _, text, _ = request(port, "GET", "/healthz", timeout=10)
    return json.loads(text) if status == 200 else {}


def scenario_slow(port, failures):
    stop = threading.Event()
    slow = []
    for _ in range(8):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        slow.append(s)
    dropped = [0]

    def drip():
        while not stop.wait(2.0):
            for s in list(slow):
                try:
                    s.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    slow.remove(s)
                    dropped[0] += 1

    asks = []

    def expensive():
        asks.append(request(port, "POST", "/v1/ask", EXPENSIVE))

    threads = [threading.Thread(target=drip)] + [threading.Thread(target=expensive) for _ in range(4)]
    for t in threads:
        t.start()
    latencies = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        status, _, _, seconds = request(port, "GET", "/healthz", timeout=5)
        latencies.append(seconds if status == 200 else float("inf"))
        time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    for s in slow:
        s.close()
    worst = max(latencies)
    print(f"slow: 8 slow-header connections + 4 expensive asks: /healthz {len(latencies)} polls, "
          f"max {worst * 1000:.0f} ms, p95 {percentile(latencies, 95) * 1000:.0f} ms; "
          f"slow connections dropped by the server: {dropped[0]}/8; "
          f"expensive asks: {sorted(a[0] for a in asks)} in max {max(a[3] for a in asks):.1f} s")
    if worst > 1.0:
        failures.append("slow: a /healthz poll took more than 1 s")


def scenario_deadline(port, failures):
    body = dict(EXPENSIVE, timeout_ms=200)
    status, _, text, seconds = request(port, "POST", "/v1/ask", body)
    code = json.loads(text).get("error", {}).get("code") if status != 200 else None
    print(f"deadline: expensive ask with timeout_ms 200: {status} {code} in {seconds * 1000:.0f} ms")
    if status != 504 or seconds > 1.0:
        failures.append("deadline: no 504 within 1 s")


def scenario_queue(port, failures):
    queues = health(port).get("queues", {}).get("answer", {})
    n = queues.get("workers", 2) + queues.get("capacity", 8) + 6
    results = []
    lock = threading.Lock()

    def ask():
        r = request(port, "POST", "/v1/ask", dict(EXPENSIVE, timeout_ms=20000))
        with lock:
            results.append(r)

    threads = [threading.Thread(target=ask) for _ in range(n)]
    for t in threads:
        t.start()
        time.sleep(0.02)
    for t in threads:
        t.join()
    refused = [r for r in results if r[0] == 503]
    with_retry = [r for r in refused if "Retry-After" in r[1]]
    others = sorted(r[0] for r in results if r[0] != 503)
    slowest_refusal = max((r[3] for r in refused), default=float("nan"))
    print(f"queue: {n} concurrent expensive asks: {len(refused)} x 503 ({len(with_retry)} with "
          f"Retry-After, slowest {slowest_refusal * 1000:.0f} ms), others {others}")
    if not refused or len(with_retry) != len(refused):
        failures.append("queue: no 503 with Retry-After")


def scenario_ingest(port, failures, docs_total, batch, max_seconds):
    run = uuid.uuid4().hex[:8]
    words = ("river capital market bridge harbour museum festival railway school library "
             "garden tower square castle valley island").split()
    stop = threading.Event()
    ingest = {"docs": 0, "seconds": 0.0, "statuses": []}

    def writer():
        start = time.monotonic()
        for first in range(0, docs_total, batch):
            if time.monotonic() - start > max_seconds:
                break
            docs = []
            for i in range(first, min(docs_total, first + batch)):
                a, b = words[i % len(words)], words[(i // len(words)) % len(words)]
                docs.append({"id": f"load-{run}-{i}",
                             "text": f"Note {i}: the {a} near the {b} was visited {i % 97} times."})
            status, headers, _, _ = request(port, "POST", "/v1/documents", {"documents": docs},
                                            timeout=600)
            while status == 503:  # the ingest queue is full: as told, retry later
                time.sleep(float(headers.get("Retry-After", "1")))
                status, headers, _, _ = request(port, "POST", "/v1/documents",
                                                {"documents": docs}, timeout=600)
            ingest["statuses"].append(status)
            if status == 200:
                ingest["docs"] += len(docs)
        ingest["seconds"] = time.monotonic() - start
        stop.set()

    latencies, statuses = [], []
    lock = threading.Lock()

    def asker():
        while not stop.is_set():
            status, _, _, seconds = request(port, "POST", "/v1/ask", CHEAP)
            with lock:
                statuses.append(status)
                if status == 200:
                    latencies.append(seconds)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=asker) for _ in range(2)]
    for t in threads:
        t.start()
    health_max = 0.0
    while not stop.is_set():
        _, _, _, seconds = request(port, "GET", "/healthz", timeout=10)
        health_max = max(health_max, seconds)
        time.sleep(0.5)
    for t in threads:
        t.join()
    ok = len(latencies)
    print(f"ingest: {ingest['docs']} documents in {ingest['seconds']:.0f} s "
          f"({ingest['docs'] / max(ingest['seconds'], 1e-9):.0f} docs/s, requests of {batch}); "
          f"meanwhile {ok}/{len(statuses)} asks OK, p50 {percentile(latencies, 50) * 1000:.0f} ms, "
          f"p95 {percentile(latencies, 95) * 1000:.0f} ms, max {max(latencies or [0]) * 1000:.0f} ms; "
          f"/healthz max {health_max * 1000:.0f} ms")
    if ok == 0 or ok != len(statuses):
        failures.append("ingest: asks failed during ingestion")


def read_questions(path, limit):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["question"] for line in f if line.strip()][:limit]


def ask_all(port, failures, questions, clients, answers):
    """Asks `questions` shared out among `clients` threads; (seconds, latencies, tokens)."""
    latencies, tokens, lock = [], [], threading.Lock()

    def client(c):
        for q in questions[c::clients]:
            status, _, text, seconds = request(port, "POST", "/v1/ask", {"question": q})
            with lock:
                if status != 200:
                    failures.append(f"throughput: {clients} clients: status {status}: {text[:200]}")
                    continue
                latencies.append(seconds)
                reply = json.loads(text)
                tokens.append(reply["generated_tokens"])
                answer = reply["answer"]
                if answers.setdefault(q, answer) != answer:
                    failures.append(f"throughput: {q!r} answered {answer!r} and {answers[q]!r}")

    start = time.monotonic()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - start, latencies, tokens


def scenario_throughput(port, failures, questions, clients_list, answers_path):
    answers = {}
    # Untimed: the first level would otherwise also pay for reading every
    # chunk's K/V from SQLite into the RAM cache and for the first asks'
    # page faults, which the later levels do not.
    ask_all(port, failures, questions, max(clients_list), answers)
    for clients in clients_list:
        seconds, latencies, tokens = ask_all(port, failures, questions, clients, answers)
        print(f"throughput: {clients} clients: {len(latencies)} answers in {seconds:.1f} s = "
              f"{len(latencies) / seconds:.2f} answers/s ({sum(tokens) / seconds:.0f} tokens/s), "
              f"p50 {percentile(latencies, 50) * 1000:.0f} ms, "
              f"p95 {percentile(latencies, 95) * 1000:.0f} ms")
    if answers_path:
        try:
            with open(answers_path, encoding="utf-8") as f:
                saved = json.load(f)
        except FileNotFoundError:
            with open(answers_path, "w", encoding="utf-8") as f:
                json.dump(answers, f, indent=1, sort_keys=True)
            print(f"throughput: {len(answers)} answers saved to {answers_path}")
            return
        differ = [q for q in answers if q in saved and saved[q] != answers[q]]
        print(f"throughput: {len(answers) - len(differ)} of {len(answers)} answers equal those of "
              f"{answers_path}")
        for q in differ:
            failures.append(f"throughput: {q!r}: {answers[q]!r}, saved {saved[q]!r}")


def throughput_clients(text):
    """--clients as a list of positive counts; exits naming the bad value."""
    try:
        clients = [int(c) for c in text.split(",")]
    except ValueError:
        sys.exit(f"--clients must be comma-separated counts, got {text!r}")
    if min(clients) < 1:
        sys.exit(f"--clients counts must be at least 1, got {text!r}")
    return clients


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8080, help="kvrag serve on 127.0.0.1:PORT")
    parser.add_argument("--only", choices=["slow", "deadline", "queue", "ingest", "throughput"])
    parser.add_argument("--questions", default="data/sample/questions-dev.jsonl",
                        help="throughput: the questions asked (JSONL with \"question\")")
    parser.add_argument("--clients", default="1,2,4,8", help="throughput: concurrency levels")
    parser.add_argument("--asks", type=int, default=64,
                        help="throughput: questions asked at each concurrency level")
    parser.add_argument("--answers", help="throughput: save answers here, or compare with them")
    parser.add_argument("--ingest-docs", type=int, default=10000)
    parser.add_argument("--ingest-batch", type=int, default=1000)
    parser.add_argument("--ingest-max-seconds", type=float, default=600,
                        help="stop sending documents after this long")
    args = parser.parse_args()
    if args.only == "throughput":
        clients = throughput_clients(args.clients)
        if args.asks < 1:
            sys.exit(f"--asks must be at least 1, got {args.asks}")
        questions = read_questions(args.questions, args.asks)
        if len(questions) < args.asks:
            sys.exit(f"--asks {args.asks}: {args.questions} holds only {len(questions)} questions")
    if not health(args.port):
        sys.exit(f"no kvrag serve answering /healthz on 127.0.0.1:{args.port}")
    failures = []
    if args.only in (None, "slow"):
        scenario_slow(args.port, failures)
    if args.only in (None, "deadline"):
        scenario_deadline(args.port, failures)
    if args.only in (None, "queue"):
        scenario_queue(args.port, failures)
    if args.only in (None, "ingest"):
        scenario_ingest(args.port, failures, args.ingest_docs, args.ingest_batch,
                        args.ingest_max_seconds)
    if args.only == "throughput":
        scenario_throughput(args.port, failures, questions, clients, args.answers)
    for f in failures:
        print("FAILED:", f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
