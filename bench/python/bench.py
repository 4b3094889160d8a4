"""The Python side of `agent-memory-bench`: the original repository class (and, when it is
installed, LangChain's RedisChatMessageHistory) driven by threads, as the original was deployed.

    bench.py --url URL --impl original|langchain --workload add|get|turn --threads N \\
             --seconds S --warmup S --message-bytes B

Prints one JSON object: {"ops": completed operations, "seconds": measured time,
"latencies_us": [per-operation latency, microseconds, ...]} or {"unavailable": "why"}.
A `turn` is a read of the context, then an append of the user message, then one of the reply.
"""

import argparse
import json
import sys
import threading
import time

from original import RedisMemoryRepository, client_from_url


def original_ops(url, threads):
    # One client (and its connection pool) shared by the threads, as a service would.
    repository = RedisMemoryRepository(client_from_url(url, max_connections=threads + 4))
    return (
        lambda session, message: repository.add_message(session, message),
        lambda session: repository.get_context(session),
    )


def langchain_ops(url, threads):
    try:
        from langchain_community.chat_message_histories import RedisChatMessageHistory
        from langchain_core.messages import messages_from_dict
    except ImportError as error:
        return None, f"LangChain is not installed ({error})"
    histories = {}
    lock = threading.Lock()

    def history(session):
        with lock:
            if session not in histories:
                histories[session] = RedisChatMessageHistory(session, url=url, ttl=3600)
            return histories[session]

    def add(session, message):
        (parsed,) = messages_from_dict([{"type": "human", "data": {"content": message["content"]}}])
        history(session).add_message(parsed)

    def get(session):
        return history(session).messages

    return (add, get), None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--impl", default="original", choices=["original", "langchain"])
    parser.add_argument("--workload", required=True, choices=["add", "get", "turn"])
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--message-bytes", type=int, default=200)
    args = parser.parse_args()

    if args.impl == "original":
        ops, why = original_ops(args.url, args.threads), None
    else:
        ops, why = langchain_ops(args.url, args.threads)
    if ops is None:
        print(json.dumps({"unavailable": why}))
        return
    add, get = ops
    filler = "x" * max(1, args.message_bytes - 40)
    prefix = f"bench-py-{args.impl}-{args.workload}-{args.threads}"

    # Every thread has its session, filled to the window for reads.
    for thread in range(args.threads):
        session = f"{prefix}-{thread}"
        for i in range(50):
            add(session, {"role": "user", "content": f"{i:04d} {filler}"})

    def operation(session, counter):
        if args.workload == "add":
            add(session, {"role": "user", "content": f"{counter:08d} {filler}"})
        elif args.workload == "get":
            get(session)
        else:
            get(session)
            add(session, {"role": "user", "content": f"{counter:08d} {filler}"})
            add(session, {"role": "assistant", "content": f"{counter:08d} {filler}"})

    start_measuring = time.monotonic() + args.warmup
    stop = start_measuring + args.seconds
    results = [[] for _ in range(args.threads)]

    def worker(thread):
        session = f"{prefix}-{thread}"
        latencies = results[thread]
        counter = 0
        while True:
            began = time.monotonic()
            if began >= stop:
                return
            operation(session, counter)
            ended = time.monotonic()
            counter += 1
            if began >= start_measuring:
                latencies.append(int((ended - began) * 1e6))

    workers = [threading.Thread(target=worker, args=(t,)) for t in range(args.threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    latencies = [latency for per_thread in results for latency in per_thread]
    json.dump({"ops": len(latencies), "seconds": args.seconds, "latencies_us": latencies}, sys.stdout)


if __name__ == "__main__":
    main()
