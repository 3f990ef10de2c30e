"""Peeking at the ClientHello before the handshake: real sockets, the bytes left for TLS."""

import asyncio
import socket
import ssl

import pytest

from harness.pki.ca import CA
from harness.server.peek import PeekingServer


@pytest.fixture(scope="module")
def tls():
    ca = CA(common_name="peek test CA")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("peek.screenmeet.com").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data.upper())


def client_hello(client: ssl.SSLContext) -> bytes:
    out = ssl.MemoryBIO()
    obj = client.wrap_bio(ssl.MemoryBIO(), out, server_hostname="peek.screenmeet.com")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def test_the_hello_is_read_and_tls_still_works(tls):
    """A real client: the server journals its hello, then the same bytes make the handshake."""
    server_ctx, client_ctx = tls
    seen = []

    async def main():
        server = await PeekingServer.start("127.0.0.1", 0, server_ctx, Echo, lambda peer, h: seen.append((peer, h)))
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=client_ctx,
                                                           server_hostname="peek.screenmeet.com")
            writer.write(b"ping")
            assert await reader.readexactly(4) == b"PING"
            local = "%s:%d" % writer.get_extra_info("sockname")[:2]
            writer.close()
            return local
        finally:
            server.close()

    local = asyncio.run(main())
    assert len(seen) == 1 and seen[0][0] == local
    assert seen[0][1].sni == "peek.screenmeet.com"


def test_a_hello_split_over_writes_and_a_non_tls_peer(tls):
    """A ClientHello that arrives in pieces is still read whole; bytes that are no TLS give None and
    the listener goes on serving."""
    server_ctx, client_ctx = tls
    hello = client_hello(client_ctx)
    seen = []

    async def main():
        server = await PeekingServer.start("127.0.0.1", 0, server_ctx, Echo, lambda peer, h: seen.append(h))
        loop = asyncio.get_running_loop()
        try:
            for pieces in ([hello[:3], hello[3:40], hello[40:]], [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"]):
                sock = socket.create_connection(("127.0.0.1", server.port))
                sock.setblocking(False)
                for piece in pieces:
                    await loop.sock_sendall(sock, piece)
                    await asyncio.sleep(0.05)
                while len(seen) < (1 if len(pieces) == 3 else 2):
                    await asyncio.sleep(0.01)
                sock.close()
        finally:
            server.close()

    asyncio.run(asyncio.wait_for(main(), 30))
    assert seen[0] is not None and seen[0].sni == "peek.screenmeet.com"
    assert seen[1] is None
