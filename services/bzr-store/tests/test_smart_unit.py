import asyncio
import concurrent.futures
import fcntl
import struct
from collections.abc import AsyncIterator
from pathlib import Path

from fastbencode import bencode

from janitor_bzr_store.jail import jailed_transport
from janitor_bzr_store.smart import OUT_CHUNK, SMALL_RESPONSE, Last, Output, SmartCall
from janitor_bzr_store.smart_bytes import V3_PREFIX, Unknown, response_outcome, sniff_verb, v3_complete, verb_class

from .test_http import v3_request


def test_sniff_v3() -> None:
    req = v3_request(b"Repository.get_stream_1.19", b"path/", b"x")
    assert sniff_verb(req) == b"Repository.get_stream_1.19"
    for cut in range(len(V3_PREFIX) + 8):
        assert sniff_verb(req[:cut]) is Unknown
    assert sniff_verb(V3_PREFIX + b"\0\0\0\x02de" + b"x") is None
    assert sniff_verb(V3_PREFIX + b"\0\0\0\x02des\0\0\0\x03i1e") is None


def test_sniff_older_protocols() -> None:
    assert sniff_verb(b"bzr request 2\nget\x01/x\n") == b"get"
    assert sniff_verb(b"hello\n") == b"hello"
    assert sniff_verb(b"hel") is Unknown
    assert sniff_verb(b"\n") is None


def test_verb_classes() -> None:
    assert verb_class(b"Repository.get_stream_1.19") == "read"
    assert verb_class(b"BzrDir.open_2.1") == "read"
    assert verb_class(b"Repository.insert_stream_1.19") == "write"
    assert verb_class(b"Branch.set_last_revision_info") == "write"
    assert verb_class(b"Branch.lock_write") == "write"
    assert verb_class(b"mkdir") == "write"
    assert verb_class(b"No.such.verb") is None


def test_response_outcome() -> None:
    headers = bencode({})
    base = V3_PREFIX + len(headers).to_bytes(4, "big") + headers
    assert response_outcome(base + b"oS") == "success"
    assert response_outcome(base + b"oE") == "error"
    assert response_outcome(b"error\x01incomplete request\n") == "error"


def test_output_holds_a_small_whole_response_for_its_end() -> None:
    sent: list[bytes] = []
    out = Output(sent.append)
    out.write(b"small response")
    assert sent == []
    assert out.take_rest() == b"small response"


def test_output_hands_over_each_flush_of_a_stream_at_once_in_bounded_slices() -> None:
    sent: list[bytes] = []
    out = Output(sent.append)
    out.write(b"status")  # held: might be all
    out.write(b"x" * 10)  # a second flush: a stream, so both go now
    assert sent == [b"status" + b"x" * 10]
    out.write(b"y" * (OUT_CHUNK * 2 + 5))
    assert [len(s) for s in sent[1:]] == [OUT_CHUNK, OUT_CHUNK, 5]
    assert out.take_rest() == b""


def test_output_replaces_only_what_has_not_gone_out() -> None:
    discarded: list[bytes] = []
    out = Output(discarded.append)
    out.write(b"partial")
    out.replace_unsent(b"error")
    assert out.take_rest() == b"error"
    sent: list[bytes] = []
    out = Output(sent.append)
    out.write(b"z" * (SMALL_RESPONSE + 1))
    out.replace_unsent(b"error")
    assert out.take_rest() == b"" and len(sent) == 1


def v3_message(body_parts: list[bytes], end: bool = True) -> bytes:
    headers: bytes = bencode({})
    args: bytes = bencode([b"ok"])
    out = V3_PREFIX + struct.pack("!L", len(headers)) + headers + b"oS" + b"s" + struct.pack("!L", len(args)) + args
    for part in body_parts:
        out += b"b" + struct.pack("!L", len(part)) + part
    return out + (b"e" if end else b"")


def test_v3_complete() -> None:
    assert v3_complete(v3_message([b"body ends in e"])) is True
    assert v3_complete(v3_message([b"first chunk of a stream"], end=False)) is False
    assert v3_complete(v3_message([b"x"])[:-3]) is False
    assert v3_complete(b"error\x01nope\n") is None


def test_output_holds_a_whole_v3_response_of_any_size() -> None:
    sent: list[bytes] = []
    out = Output(sent.append)
    whole = v3_message([b"y" * (OUT_CHUNK * 3)])
    out.write(whole)
    assert sent == []
    assert out.take_rest() == whole


def test_output_hands_over_a_v3_streams_first_flush_at_once() -> None:
    sent: list[bytes] = []
    out = Output(sent.append)
    first = v3_message([b"records"], end=False)
    out.write(first)
    assert sent == [first]


def test_outbox_keeps_order_and_bounds_what_is_in_flight() -> None:
    import asyncio
    import threading

    from janitor_bzr_store.smart import Outbox

    async def scenario() -> tuple[list[object], int]:
        outbox = Outbox(asyncio.get_running_loop(), depth=3)
        cancelled = threading.Event()
        put_count = 0

        def worker() -> None:
            nonlocal put_count
            for i in range(10):
                outbox.put(i, cancelled)
                put_count += 1

        thread = threading.Thread(target=worker)
        thread.start()
        await asyncio.sleep(0.3)
        in_flight = put_count  # nobody has taken anything yet
        got = [await outbox.get() for _ in range(10)]
        thread.join(5)
        return got, in_flight

    got, in_flight = asyncio.run(scenario())
    assert got == list(range(10))
    assert in_flight == 3


def test_outbox_abandon_releases_a_blocked_worker() -> None:
    import asyncio
    import threading

    from janitor_bzr_store.smart import Aborted, Outbox

    async def scenario() -> BaseException | None:
        outbox = Outbox(asyncio.get_running_loop(), depth=1)
        cancelled = threading.Event()
        raised: list[BaseException] = []

        def worker() -> None:
            try:
                outbox.put(b"first", cancelled)
                outbox.put(b"second", cancelled)  # blocks: the first is not taken
            except Aborted as e:
                raised.append(e)

        thread = threading.Thread(target=worker)
        thread.start()
        await asyncio.sleep(0.2)
        assert thread.is_alive()
        cancelled.set()
        outbox.release_worker()
        await asyncio.to_thread(thread.join, 5)
        return raised[0] if raised else None

    assert isinstance(asyncio.run(scenario()), Aborted)


def test_observe_reads_with_the_write_lock_held(tmp_path: Path) -> None:
    """The audit's tips are the request's own doing: read after the lock is taken, and before it is let go."""
    lock = tmp_path / "write-lock"
    lock.touch()
    seen: list[str] = []

    def observe() -> str:
        with open(lock) as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                seen.append("free")
            except BlockingIOError:
                seen.append("held")
        return f"tip {len(seen)}"

    async def scenario() -> SmartCall:
        transport = jailed_transport(str(tmp_path))
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            call = SmartCall(
                lambda: (transport, transport),
                asyncio.get_running_loop(),
                pool,
                write_lock=lock,
                observe=observe,
                root_client_path="/",
            )

            async def body() -> AsyncIterator[bytes]:
                yield v3_request(b"BzrDir.open_2.1", b"/")

            await call.feed(body(), 1 << 20)
            item = await call.next_item()
            while isinstance(item, bytes):
                item = await call.next_item()
            assert isinstance(item, Last), item
        return call

    call = asyncio.run(scenario())
    assert seen == ["held", "held"]
    assert (call.observed_before, call.observed_after) == ("tip 1", "tip 2")
    with open(lock) as f:  # and let go at the end
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
