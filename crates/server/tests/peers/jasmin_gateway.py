"""Jasmin (PyPI `jasmin`) as an SMPP gateway between an ESME and an upstream SMSC.

Starts `jasmind.py` with its own configuration in a temporary directory (SMPP server, jCli
and HTTP API on free ports of 127.0.0.1; RabbitMQ and Redis on their usual local ports, in a
RabbitMQ virtual host of its own, removed at the end, and Redis database 13, emptied first:
nothing left by an earlier run reaches this one),
then, through jCli as an operator would: a group and a user `ami`/`secret` that may bind
to the SMPP server, an SMPP client connector to the upstream SMSC (`ami`/`secret` there
too), a default MT route to that connector and a default MO route back to the user.

Prints {"port": N} (the SMPP server's port) once the upstream connector is bound, then runs
until its stdin closes, SIGTERM or SIGINT.

Usage: python3 jasmin_gateway.py UPSTREAM_PORT
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

JASMIND = os.path.join(os.path.dirname(sys.executable), "jasmind.py")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def amqp_spec():
    import txamqp

    return os.path.join(os.path.dirname(txamqp.__file__), "specs/standard/amqp0-9-1.stripped.xml")


class Jcli:
    """A jCli session: one command per line, each answered up to the next prompt."""

    PROMPTS = (b"jcli : ", b"> ")

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        # The greeting ends with the session's reference, without a prompt.
        self.read(lambda out: b"Session ref" in out and out.endswith(b"\n"))

    def read(self, done=None):
        done = done or (lambda out: out.endswith(self.PROMPTS))
        out = b""
        while not done(out):
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("jCli closed: %r" % out)
            out += chunk
        return out.decode(errors="replace")

    def run(self, *lines):
        answers = []
        for line in lines:
            self.sock.sendall(line.encode() + b"\r\n")
            answers.append(self.read())
        text = "".join(answers)
        for bad in ("Error", "Unknown", "error", "Invalid"):
            if bad in text:
                raise RuntimeError("jCli refused %r: %s" % (lines, text))
        return text


def wait_port(port, proc, what):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("jasmind exited before %s was up" % what)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("%s never listened on %d" % (what, port))


REDIS_DB = 13


def rabbitmqctl(*args):
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, stdout=subprocess.DEVNULL)


def main():
    upstream = int(sys.argv[1])
    home = tempfile.mkdtemp(prefix="jasmin-")
    vhost = "ami-jasmin-%d" % os.getpid()
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    import redis

    redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).flushdb()
    smpp_port, jcli_port, http_port = free_port(), free_port(), free_port()
    os.makedirs(os.path.join(home, "store"))
    os.makedirs(os.path.join(home, "log"))
    with open(os.path.join(home, "jasmin.cfg"), "w") as cfg:
        cfg.write(
            f"""[smpp-server]
bind = 127.0.0.1
port = {smpp_port}

[jcli]
bind = 127.0.0.1
port = {jcli_port}
authentication = False

[http-api]
bind = 127.0.0.1
port = {http_port}

[amqp-broker]
spec = {amqp_spec()}
vhost = {vhost}

[redis-client]
dbid = {REDIS_DB}
"""
        )
    env = dict(
        os.environ,
        CONFIG_PATH=home + "/",
        STORE_PATH=os.path.join(home, "store") + "/",
        LOG_PATH=os.path.join(home, "log"),
    )
    proc = subprocess.Popen(
        [sys.executable, JASMIND, "--enable-dlr-thrower", "--enable-dlr-lookup"],
        env=env,
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(home, "log", "jasmind.err"), "w"),
    )

    def stop(code=0):
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        rabbitmqctl("delete_vhost", vhost)
        if code == 0:
            shutil.rmtree(home, ignore_errors=True)
        sys.exit(code)

    signal.signal(signal.SIGTERM, lambda *_: stop())
    signal.signal(signal.SIGINT, lambda *_: stop())
    try:
        wait_port(jcli_port, proc, "jCli")
        wait_port(smpp_port, proc, "the SMPP server")
        # A connector id of its own: queues and state in the shared RabbitMQ stay apart.
        cid = "up%d" % os.getpid()
        jcli = Jcli(jcli_port)
        jcli.run("group -a", "gid ami", "ok")
        jcli.run("user -a", "username ami", "password secret", "gid ami", "uid ami", "ok")
        jcli.run(
            "smppccm -a",
            "cid " + cid,
            "host 127.0.0.1",
            "port %d" % upstream,
            "username ami",
            "password secret",
            "bind transceiver",
            # Jasmin's default is one message per second, and national sender numbers.
            "submit_throughput 0",
            "src_ton 1",
            "src_npi 1",
            "ok",
        )
        jcli.run("smppccm -1 " + cid)
        jcli.run("mtrouter -a", "type defaultroute", "connector smppc(%s)" % cid, "rate 0.00", "ok")
        jcli.run("morouter -a", "type defaultroute", "connector smpps(ami)", "ok")
        deadline = time.monotonic() + 30
        while "BOUND_TRX" not in jcli.run("smppccm -l"):
            if time.monotonic() > deadline:
                raise RuntimeError("the upstream connector never bound: " + jcli.run("smppccm -l"))
            time.sleep(0.2)
        print(json.dumps({"port": smpp_port, "home": home}), flush=True)
        sys.stdin.read()
    except Exception as e:  # noqa: BLE001 - reported, then the daemon goes too
        print(json.dumps({"error": str(e), "home": home}), flush=True)
        stop(1)
    stop()


if __name__ == "__main__":
    main()
