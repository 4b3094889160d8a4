"""The Python original: the conversation-memory repository agent-memory reproduces.

This is the design agent-memory started from, kept as a reference implementation for the
interop tests: Python services of this design keep running beside the Rust host, and both must
read and write the same sessions.

- key ``ai:memory:{session_id}``; a Redis list of ``json.dumps``-encoded message dicts;
- RPUSH to append, LRANGE 0 -1 to read;
- after each write LTRIM to the last 50 and EXPIRE 3600, all in one MULTI/EXEC;
- entries that do not decode are skipped on read;
- Redis connection errors are caught: reads give an empty history, writes are logged and dropped.

Run as a script it is a small CLI for the tests (prints JSON on stdout)::

    original.py --url redis://127.0.0.1:7000 add SESSION '{"role": "user", "content": "hi"}'
    original.py --url redis://127.0.0.1:7000 get SESSION
    original.py --url redis://127.0.0.1:7000 clear SESSION

``--url`` takes the store addresses agent-memory takes, each with redis-py's own client for
that deployment (see ``client_from_url``): the class itself is unchanged.
"""

import argparse
import json
import logging
import sys
from urllib.parse import parse_qs, unquote

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel

log = logging.getLogger("memory")


class RedisMemoryRepository:
    """Short-term memory of one agent: the last messages of each session."""

    def __init__(self, client, max_messages=50, ttl_seconds=3600, prefix="ai:memory:"):
        self.client = client
        self.max_messages = max_messages
        self.ttl_seconds = ttl_seconds
        self.prefix = prefix

    def _key(self, session_id):
        return f"{self.prefix}{session_id}"

    def add_message(self, session_id, message):
        self.add_messages(session_id, [message])

    def add_messages(self, session_id, messages):
        key = self._key(session_id)
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.rpush(key, *[json.dumps(message) for message in messages])
            pipe.ltrim(key, -self.max_messages, -1)
            pipe.expire(key, self.ttl_seconds)
            pipe.execute()
        except redis.exceptions.ConnectionError as error:
            log.warning("memory write dropped for %s: %s", session_id, error)

    def get_context(self, session_id):
        try:
            raw = self.client.lrange(self._key(session_id), 0, -1)
        except redis.exceptions.ConnectionError as error:
            log.warning("memory read failed for %s: %s", session_id, error)
            return []
        messages = []
        for entry in raw:
            try:
                messages.append(json.loads(entry))
            except (ValueError, UnicodeDecodeError):
                log.warning("skipping a corrupt memory entry in %s", session_id)
        return messages

    def clear(self, session_id):
        try:
            self.client.delete(self._key(session_id))
        except redis.exceptions.ConnectionError as error:
            log.warning("memory clear dropped for %s: %s", session_id, error)


def _host_port(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def client_from_url(url, **options):
    """The redis-py client a Python service would use for a store address (``options`` go to
    its constructor, such as ``max_connections``):

    - ``redis[s]+cluster://h:p,h:p[?ssl_ca_certs=FILE]``: ``RedisCluster`` over the seed nodes;
    - ``redis[s]+sentinel://[user:pass@]h:p,h:p/MASTER[?ssl_ca_certs=FILE]``:
      ``Sentinel(...).master_for(MASTER)`` (TLS to the sentinels and the master with ``rediss``;
      the password for both, as the Rust host offers it to sentinels that require one);
    - anything else: ``Redis.from_url`` (``redis://``, ``rediss://...?ssl_ca_certs=...``).
    """
    scheme, _, rest = url.partition("://")
    rest, _, query = rest.partition("?")
    tls = {}
    if scheme.startswith("rediss+"):
        tls = {"ssl": True, "ssl_cert_reqs": "required"}
        for name, values in parse_qs(query).items():
            tls[name] = values[-1]
    if scheme in ("redis+cluster", "rediss+cluster"):
        nodes = [ClusterNode(*_host_port(host)) for host in rest.rstrip("/").split(",")]
        return RedisCluster(startup_nodes=nodes, **tls, **options)
    if scheme in ("redis+sentinel", "rediss+sentinel"):
        hosts, _, master = rest.partition("/")
        userinfo, _, hosts = hosts.rpartition("@")
        auth = {}
        if userinfo:
            user, _, password = userinfo.partition(":")
            auth = {"username": unquote(user) or None, "password": unquote(password)}
        sentinel = Sentinel(
            [_host_port(host) for host in hosts.split(",")],
            socket_timeout=2,
            sentinel_kwargs={"socket_timeout": 2, **tls, **auth},
        )
        return sentinel.master_for(
            master.split("/")[0], socket_timeout=2, **tls, **auth, **options
        )
    return redis.Redis.from_url(url, **options)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--max-messages", type=int, default=50)
    parser.add_argument("--ttl-seconds", type=int, default=3600)
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="append JSON messages (each argument one message)")
    add.add_argument("session")
    add.add_argument("messages", nargs="+")
    get = commands.add_parser("get", help="print the history as a JSON array")
    get.add_argument("session")
    clear = commands.add_parser("clear")
    clear.add_argument("session")
    args = parser.parse_args()

    repository = RedisMemoryRepository(
        client_from_url(args.url),
        max_messages=args.max_messages,
        ttl_seconds=args.ttl_seconds,
    )
    if args.command == "add":
        repository.add_messages(args.session, [json.loads(text) for text in args.messages])
    elif args.command == "get":
        json.dump(repository.get_context(args.session), sys.stdout)
    elif args.command == "clear":
        repository.clear(args.session)


if __name__ == "__main__":
    main()
