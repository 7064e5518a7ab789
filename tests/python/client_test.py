#!/usr/bin/env python3
"""A third-party client of chatd's gRPC API, in Python with grpcio.

Generates stubs from proto/chat/v1/*.proto at run time (grpcio-tools), starts a chatd in a
temporary directory, and checks over the Unix socket and over TCP with a bearer token:
health, status, send, subscribe, history, rooms and reflection (v1alpha, the only version
grpcio's reflection client speaks).

Usage: client_test.py PATH/TO/chatd
Prints 'N passed, N failed' and exits non-zero on any failure.
"""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_tools import protoc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTO_DIR = os.path.join(ROOT, "proto")
TOKEN = "python-client-test-token-0123456789"
DEADLINE = 30.0


def generate_stubs(out_dir):
    """Compiles chat/v1/*.proto into out_dir and makes it importable."""
    protos = sorted(
        os.path.join("chat", "v1", f)
        for f in os.listdir(os.path.join(PROTO_DIR, "chat", "v1"))
        if f.endswith(".proto")
    )
    os.makedirs(out_dir)
    args = ["protoc", f"-I{PROTO_DIR}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}"]
    if protoc.main(args + protos) != 0:
        raise RuntimeError("grpc_tools.protoc failed")
    sys.path.insert(0, out_dir)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, what):
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def run(self, name, fn, *args):
        try:
            fn(*args)
            self.passed += 1
            print(f"ok    {name}")
        except Exception as e:  # report every failure, keep going
            self.failed += 1
            print(f"FAIL  {name}: {e!r}")


def check_health(channel, metadata=None):
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ["", "chat.v1.ChatService"]:
        resp = stub.Check(health_pb2.HealthCheckRequest(service=service), metadata=metadata, timeout=5)
        assert resp.status == health_pb2.HealthCheckResponse.SERVING, (service, resp.status)


def check_status(channel, metadata=None, nickname="py"):
    from chat.v1 import node_service_pb2, node_service_pb2_grpc

    stub = node_service_pb2_grpc.NodeServiceStub(channel)
    status = lambda: stub.GetStatus(node_service_pb2.GetStatusRequest(), metadata=metadata, timeout=5)
    # The nickname is claimed on the network just after the node founds its ring.
    wait_for(lambda: status().nickname == nickname, f"the nickname {nickname}")
    resp = status()
    assert len(resp.node_id) == 64 and len(resp.user_id) == 64, resp
    assert resp.presence == "online", resp


def check_users(channel, metadata=None):
    from chat.v1 import user_service_pb2 as u
    from chat.v1 import user_service_pb2_grpc as ug

    stub = ug.UserServiceStub(channel)
    users = stub.ListUsers(u.ListUsersRequest(), metadata=metadata, timeout=5).users
    me = [x for x in users if x.is_self]
    assert len(me) == 1 and me[0].nickname == "py" and me[0].presence == u.PRESENCE_ONLINE, users
    stub.SetPresence(u.SetPresenceRequest(away=True, away_message="tea"), metadata=metadata, timeout=5)
    users = stub.ListUsers(u.ListUsersRequest(), metadata=metadata, timeout=5).users
    me = [x for x in users if x.is_self][0]
    assert me.presence == u.PRESENCE_AWAY and me.away_message == "tea", me
    stub.SetPresence(u.SetPresenceRequest(away=False), metadata=metadata, timeout=5)
    try:
        stub.SetNickname(u.SetNicknameRequest(nickname="*py"), metadata=metadata, timeout=5)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "nickname" in e.details(), e
    else:
        raise AssertionError("a '*' nickname was accepted")


def check_send_subscribe_history(channel, metadata=None, room="python"):
    from chat.v1 import chat_service_pb2 as pb
    from chat.v1 import chat_service_pb2_grpc as rpc

    stub = rpc.ChatServiceStub(channel)
    stream = stub.Subscribe(pb.SubscribeRequest(room=room), metadata=metadata)
    received = []

    def read():
        try:
            for event in stream:
                if event.WhichOneof("event") == "message":
                    received.append(event.message)
        except grpc.RpcError:
            pass  # cancelled below

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    # The subscription may start after the first send: send until one arrives.
    texts = []
    def delivered():
        text = f"hello from python {len(texts)}"
        texts.append(text)
        sent = stub.Send(pb.SendRequest(room=room, text=text), metadata=metadata, timeout=5)
        assert sent.message.text == text and sent.message.room == room, sent
        assert sent.message.kind == pb.MESSAGE_KIND_TEXT
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            if received:
                return True
            time.sleep(0.02)
        return False
    wait_for(delivered, "a message on the subscription")
    stream.cancel()
    msg = received[0]
    assert msg.text in texts and msg.sequence >= 1 and len(msg.id) == 64, msg
    assert msg.sent_at_unix_ms > 1_600_000_000_000, msg
    page = stub.History(pb.HistoryRequest(room=room, limit=1000), metadata=metadata, timeout=5)
    assert [m.text for m in page.messages] == texts, page
    rooms = stub.ListRooms(pb.ListRoomsRequest(), metadata=metadata, timeout=5)
    assert room in [r.name for r in rooms.rooms], rooms


def check_bad_input(channel, metadata=None):
    from chat.v1 import chat_service_pb2 as pb
    from chat.v1 import chat_service_pb2_grpc as rpc

    try:
        rpc.ChatServiceStub(channel).Send(pb.SendRequest(text=""), metadata=metadata, timeout=5)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
        assert e.details().startswith("text: "), e.details()
    else:
        raise AssertionError("empty text accepted")


def check_records(channel, metadata=None):
    from chat.v1 import record_service_pb2 as rpb
    from chat.v1 import record_service_pb2_grpc as rgrpc

    stub = rgrpc.RecordServiceStub(channel)
    put = stub.PutRecord(rpb.PutRecordRequest(kind="nick", key=b"py-user", value=b"from python"),
                         metadata=metadata, timeout=30)
    assert put.record.value == b"from python" and len(put.record.owner) == 32, put
    assert put.record.key == b"py-user", put
    got = stub.GetRecord(rpb.GetRecordRequest(kind="nick", key=b"py-user"),
                         metadata=metadata, timeout=30)
    assert [r.value for r in got.records] == [b"from python"], got
    # The kinds chatd's services own are not the client's to write.
    for kind in ["profile", "presence", "keys", "mailbox"]:
        try:
            stub.PutRecord(rpb.PutRecordRequest(kind=kind, key=b"\x07" * 32, value=b"x"),
                           metadata=metadata, timeout=30)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e
        else:
            raise AssertionError(f"a client wrote a {kind} record")
    for bad in [rpb.PutRecordRequest(kind="nick", key=b"Not Normal", value=b"x"),
                rpb.PutRecordRequest(kind="weird", value=b"x")]:
        try:
            stub.PutRecord(bad, metadata=metadata, timeout=30)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
        else:
            raise AssertionError(f"accepted {bad}")
    try:
        stub.GetRecord(rpb.GetRecordRequest(kind="nick", key=b"nobody-has-this"),
                       metadata=metadata, timeout=30)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.NOT_FOUND, e
    else:
        raise AssertionError("found a record nobody put")


def check_reflection(channel):
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    services = ProtoReflectionDescriptorDatabase(channel).get_services()
    for name in ["chat.v1.ChatService", "chat.v1.NodeService", "chat.v1.RecordService",
                 "grpc.health.v1.Health"]:
        assert name in services, services


def check_tcp_token(addr):
    from chat.v1 import chat_service_pb2 as pb
    from chat.v1 import chat_service_pb2_grpc as rpc

    with grpc.insecure_channel(addr) as channel:
        stub = rpc.ChatServiceStub(channel)
        for metadata in [None, [("authorization", "Bearer wrong-token-wrong-token")]]:
            try:
                stub.Send(pb.SendRequest(text="no"), metadata=metadata, timeout=5)
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
            else:
                raise AssertionError(f"accepted with {metadata}")
        good = [("authorization", f"Bearer {TOKEN}")]
        check_health(channel, good)
        # Over TCP the caller is the token's guest: an account of its own.
        check_status(channel, good, nickname="guest")
        check_send_subscribe_history(channel, good, "python-tcp")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    chatd = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        generate_stubs(os.path.join(tmp, "stubs"))
        sock = os.path.join(tmp, "run", "control.sock")
        token_file = os.path.join(tmp, "token")
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, (TOKEN + "\n").encode())
        os.close(fd)
        addr = f"127.0.0.1:{free_port()}"
        config = os.path.join(tmp, "chatd.toml")
        with open(config, "w") as f:
            f.write(f'[control]\ntcp_listen = "{addr}"\ntoken_file = "{token_file}"\n')
            f.write("send_rate = 1000\nsend_burst = 1000\n")
        env = {"HOME": tmp, "PATH": os.environ.get("PATH", ""), "CHATD_LOG": "warn"}
        log = open(os.path.join(tmp, "chatd.log"), "w")
        daemon = subprocess.Popen(
            [chatd, "--config", config, "--listen", "127.0.0.1:0", "--data-dir",
             os.path.join(tmp, "data"), "--control", sock, "--nick", "py"],
            env=env, stdout=subprocess.DEVNULL, stderr=log,
        )
        checks = Checks()
        try:
            wait_for(lambda: os.path.exists(sock) or daemon.poll() is not None, "the socket")
            assert daemon.poll() is None, open(log.name).read()
            # grpcio derives the HTTP/2 :authority from the target; for "unix:PATH" that is the
            # socket path, which is not a valid authority, so name one explicitly.
            options = [("grpc.default_authority", "localhost")]
            with grpc.insecure_channel(f"unix:{sock}", options=options) as channel:
                checks.run("unix: health is SERVING", check_health, channel)
                checks.run("unix: GetStatus", check_status, channel)
                checks.run("unix: ListUsers, SetPresence, SetNickname refusal", check_users, channel)
                checks.run("unix: Send, Subscribe, History, ListRooms", check_send_subscribe_history, channel)
                checks.run("unix: INVALID_ARGUMENT names the field", check_bad_input, channel)
                checks.run("unix: PutRecord, GetRecord, refusals", check_records, channel)
                checks.run("unix: reflection v1alpha lists the services", check_reflection, channel)
            wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", int(addr.split(":")[1]))) == 0, "TCP")
            checks.run("tcp: token required, then everything works", check_tcp_token, addr)
        finally:
            daemon.terminate()
            daemon.wait(timeout=10)
            log.close()
            if checks.failed:
                print(open(log.name).read())
    print(f"python client: {checks.passed} passed, {checks.failed} failed")
    sys.exit(1 if checks.failed else 0)


if __name__ == "__main__":
    main()
