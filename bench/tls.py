# TLS, asyncio side of bench/tls.lua: a TLS echo server and 50 clients in
# one process, 1 000 round trips of 64 bytes each, then 64 MiB through one
# TLS connection; the same certificates, made with the openssl command.
import asyncio
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

CLIENTS = int(sys.argv[1]) if len(sys.argv) > 1 else 50
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
BULK = (int(sys.argv[3]) if len(sys.argv) > 3 else 64) * 1024 * 1024
SIZE = 64


def make_certs(d):
    key = "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
    for cmd in [
        key + "-x509 -days 2 -subj /CN=ca -keyout ca.key -out ca.pem",
        key + "-subj /CN=localhost -keyout server.key -out server.csr",
        "echo subjectAltName=DNS:localhost > ext && openssl x509 -req -days 2 -in server.csr"
        " -CA ca.pem -CAkey ca.key -CAcreateserial -extfile ext -out server.pem",
    ]:
        subprocess.run(cmd, shell=True, cwd=d, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def main(d):
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(os.path.join(d, "server.pem"), os.path.join(d, "server.key"))
    cctx = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))

    async def handle(reader, writer):
        first = await reader.readexactly(1)
        if first == b"B":
            left = BULK
            while left > 0:
                left -= len(await reader.read(min(left, 262144)))
            writer.write(b"ok")
            await writer.drain()
        else:
            writer.write(first)
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=sctx)
    port = server.sockets[0].getsockname()[1]
    conns = []
    for _ in range(CLIENTS):
        r, w = await asyncio.open_connection("127.0.0.1", port, ssl=cctx, server_hostname="localhost")
        w.write(b"E")
        assert await r.readexactly(1) == b"E"
        conns.append((r, w))
    msg = b"x" * SIZE

    async def client(r, w):
        for _ in range(ROUNDS):
            w.write(msg)
            assert await r.readexactly(SIZE) == msg

    t0 = time.perf_counter()
    await asyncio.gather(*(client(r, w) for r, w in conns))
    echo = time.perf_counter() - t0
    for _, w in conns:
        w.close()

    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=cctx, server_hostname="localhost")
    chunk = b"b" * 65536
    t0 = time.perf_counter()
    w.write(b"B")
    for _ in range(BULK // len(chunk)):
        w.write(chunk)
        await w.drain()
    assert await r.readexactly(2) == b"ok"
    bulk = time.perf_counter() - t0
    w.close()
    server.close()
    await server.wait_closed()
    n = CLIENTS * ROUNDS
    print("RESULT seconds=%.6f round_trips=%d rtps=%.0f bulk_seconds=%.6f bulk_mib_s=%.1f"
          % (echo, n, n / echo, bulk, BULK / 1048576 / bulk))


d = tempfile.mkdtemp(prefix="aloop-bench-tls.")
try:
    make_certs(d)
    asyncio.run(main(d))
finally:
    shutil.rmtree(d)
