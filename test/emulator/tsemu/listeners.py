"""Listeners: unix sockets, one thread per connection, peer credentials."""

import os
import socket
import struct
import threading
import traceback

from .http1 import (GO_MAX_POST_HANDLER_READ, BadRequest, ClientGone, ResponseWriter,
                    SockReader, parse_request, read_body)
from .log import log


def peer_creds(sock):
    try:
        data = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return struct.unpack("3i", data)
    except OSError:
        return (0, -1, -1)


class UnixServer:
    """A unix-socket listener serving HTTP/1.x connections, one thread each."""

    def __init__(self, emu, path, handler, name):
        self.emu = emu
        self.path = path
        self.handler = handler
        self.name = name
        self.lsock = None
        self.bound = False      # the socket file is ours to remove
        self.conns = set()
        self.lock = threading.Lock()

    def open(self):
        d = os.path.dirname(self.path) or "."
        if not os.path.isdir(d):
            # tailscaled: MkdirAll(dir, 0755)
            os.makedirs(d, mode=0o755, exist_ok=True)
            os.chmod(d, 0o755)
        if os.path.lexists(self.path):
            # Like safesocket: a live daemon keeps its socket, a stale file goes.
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(self.path)
                in_use = True
            except OSError:
                in_use = False
            finally:
                probe.close()
            if in_use:
                raise RuntimeError("%s is in use by another process" % self.path)
            os.unlink(self.path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(self.path)
        self.bound = True
        os.chmod(self.path, 0o666)  # peer credentials authorize, not file modes
        s.listen(128)
        s.settimeout(0.2)
        self.lsock = s
        threading.Thread(target=self._accept_loop, args=(s,), daemon=True,
                         name="accept-" + self.name).start()

    @property
    def listening(self):
        return self.lsock is not None

    def close(self, unlink=True, drop_conns=True):
        s, self.lsock = self.lsock, None
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        if unlink and self.bound:
            self.bound = False
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        if drop_conns:
            with self.lock:
                conns = list(self.conns)
            for c in conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _accept_loop(self, s):
        while self.lsock is s:
            try:
                c, _ = s.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            c.settimeout(None)
            with self.lock:
                self.conns.add(c)
            threading.Thread(target=self._serve_conn, args=(c,), daemon=True,
                             name="conn-" + self.name).start()

    def _serve_conn(self, c):
        creds = peer_creds(c)
        reader = SockReader(c)
        try:
            while not self.emu.stopping.is_set():
                try:
                    req = parse_request(reader)
                except BadRequest as e:
                    self.handler.bad_request(c, creds, e)
                    return
                req.reader, req.sock, req.creds = reader, c, creds
                if getattr(req, "expect_failed", False):
                    w = ResponseWriter(c, req)
                    w.set("Connection", "close")
                    w.write_header(417)
                    w.finish()
                    return
                w = ResponseWriter(c, req)
                keep = self.handler.serve(req, w)
                if keep is False or w.close_after:
                    return
                # Go drains a small unread body to reuse the connection.
                if not req.body_consumed and req.content_length != 0:
                    if req.expect_continue and not req.continue_sent:
                        return
                    try:
                        read_body(reader, req.content_length, GO_MAX_POST_HANDLER_READ)
                    except BadRequest:
                        return
        except ClientGone:
            pass
        except Exception:
            log("connection handler crashed:\n" + traceback.format_exc())
        finally:
            with self.lock:
                self.conns.discard(c)
            try:
                c.close()
            except OSError:
                pass


def conn_closed(sock):
    """True once the peer has closed its end (used while streaming/hanging)."""
    try:
        data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        return data == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
