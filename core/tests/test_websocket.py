"""farcall.sdk.websocket.Connection against websockets' own server, on loopback."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from farcall.sdk.websocket import Connection, Woken
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.server import ServerProtocol
from websockets.sync.server import serve

log = logging.getLogger("test-websocket")


@contextmanager
def server(handler: Callable[[Any], None], **options: Any) -> Iterator[str]:
    with serve(handler, "127.0.0.1", 0, max_size=None, **options) as running:
        thread = threading.Thread(target=running.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"ws://127.0.0.1:{running.socket.getsockname()[1]}/"
        finally:
            running.shutdown()
            thread.join(10)


def echo(ws: Any) -> None:
    for message in ws:
        if message == "slow":
            time.sleep(0.45)
        elif message.startswith("big"):
            time.sleep(0.3)  # the client's send must wait for the server to read
            message = str(len(message))
        ws.send(message)


def test_requests_get_their_answers_in_order() -> None:
    with server(echo) as url:
        conn = Connection(url, {"Authorization": "Bearer x"}, 5.0, log)
        try:
            for i in range(20):
                conn.send(f"m{i}")
                assert conn.recv(5.0) == f"m{i}"
        finally:
            conn.close()


@contextmanager
def slow_reader(pause: float) -> Iterator[str]:
    """A server that, after the handshake, reads nothing for ``pause`` seconds, then
    answers the first message with its length."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve_one() -> None:
        sock, _ = listener.accept()
        with sock:
            protocol = ServerProtocol(max_size=None)
            while not (events := protocol.events_received()):
                protocol.receive_data(sock.recv(65536))
            protocol.send_response(protocol.accept(events[0]))  # the handshake
            sock.sendall(b"".join(protocol.data_to_send()))
            time.sleep(pause)
            size, done = 0, False
            while not done:
                protocol.receive_data(sock.recv(1 << 20))
                for frame in protocol.events_received():
                    size += len(frame.data)
                    done = done or frame.fin
            protocol.send_text(str(size).encode())
            sock.sendall(b"".join(protocol.data_to_send()))

    thread = threading.Thread(target=serve_one, daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{listener.getsockname()[1]}/"
    finally:
        listener.close()
        thread.join(10)


def test_a_large_message_after_the_idle_check_waits_for_the_reader() -> None:
    """The idle check's non-blocking read must not leave the next send non-blocking."""
    with slow_reader(0.5) as url:
        conn = Connection(url, {}, 5.0, log)
        try:
            assert conn.usable()  # as a channel asks before each request
            big = "x" * 8_000_000  # more than the socket buffers hold
            conn.send(big)
            assert conn.recv(5.0) == str(len(big))
        finally:
            conn.close()


def test_a_late_answer_is_a_timeout() -> None:
    with server(echo) as url:
        conn = Connection(url, {}, 5.0, log)
        try:
            conn.send("slow")
            with pytest.raises(TimeoutError):
                conn.recv(0.1)
        finally:
            conn.close()


def test_a_wait_ends_when_its_wake_socket_is_written_to() -> None:
    with server(echo) as url:
        conn = Connection(url, {}, 5.0, log)
        wake_r, wake_w = socket.socketpair()
        try:
            conn.send("slow")  # answered after 0.45 s
            threading.Timer(0.1, wake_w.send, args=(b"\0",)).start()
            started = time.monotonic()
            with pytest.raises(Woken):
                conn.recv(5.0, wake_r)
            assert time.monotonic() - started < 0.4
            assert wake_r.recv(8) == b"\0"  # left for the caller to read
            assert conn.recv(5.0, wake_r) == "slow"  # the connection is as it was
            conn.send("m")
            assert conn.recv(5.0, wake_r) == "m"
        finally:
            conn.close()
            wake_r.close()
            wake_w.close()


def test_pings_are_answered_while_waiting_and_an_idle_connection_is_found_closed() -> None:
    with server(echo, ping_interval=0.1, ping_timeout=0.3) as url:
        conn = Connection(url, {}, 5.0, log)
        try:
            for _ in range(2):  # the server pings while it takes 0.45 s to answer
                assert conn.usable()
                conn.send("slow")
                assert conn.recv(5.0) == "slow"
            time.sleep(1.5)  # idle: pings go unanswered and the server gives up
            assert not conn.usable()
            with pytest.raises(ConnectionClosed):
                conn.recv(1.0)
        finally:
            conn.close()


def test_a_refused_handshake_raises_with_its_status() -> None:
    def refuse(connection: Any, request: Any) -> Any:
        return connection.respond(404, "no channel here\n")

    with server(echo, process_request=refuse) as url:
        with pytest.raises(InvalidStatus) as refused:
            Connection(url, {}, 5.0, log)
        assert refused.value.response.status_code == 404


def self_signed(directory: Any) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


def test_over_tls_small_and_large_messages_and_the_idle_check(tmp_path: Any,
                                                              monkeypatch: Any) -> None:
    import ssl

    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", cert)  # the client's default context trusts it
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with server(echo, ssl=context) as url:
        conn = Connection(url.replace("ws://", "wss://"), {}, 5.0, log)
        try:
            for i in range(5):
                assert conn.usable()
                conn.send(f"m{i}")
                assert conn.recv(5.0) == f"m{i}"
            big = "big" + "x" * 4_000_000  # many TLS records, more than the buffers hold
            conn.send(big)
            assert conn.recv(5.0) == str(len(big))
            conn.send("slow")
            with pytest.raises(TimeoutError):
                conn.recv(0.1)
        finally:
            conn.close()
