#!/usr/bin/env python3
"""scripted-server.py - a POP3 or IMAP server on 127.0.0.1 that does what
Dovecot will not: hand an old UIDL to new mail, list two messages under
one UIDL, keep UIDVALIDITY across a reset, drip its answers a byte at a
time.  Plain TCP (the connector runs with SecurityProtocol=NONE).

    scripted-server.py SCENARIO.json PORTFILE LOGFILE

SCENARIO (JSON):
  {"protocol": "pop3" | "imap",
   "messages": {"NAME": MSG, ...},
   "sessions": [["NAME", ...], ...],            # mailbox per connection;
                                                # the last one repeats
   "drip": {"after": "UIDL", "every": 2.0},      # optional: answer the
                                                # first command starting
                                                # with "after" one byte
                                                # per "every" seconds
   "cut": {"after": "TOP", "bytes": 40}}         # optional: send only the
                                                # first "bytes" bytes of the
                                                # answer to the first command
                                                # starting with "after", then
                                                # close the connection (what
                                                # a kicked Dovecot does)
  MSG: {"uidl": "u1", "file": "path/to/message.eml"}  (IMAP: "uid": 7;
       "refuse": true answers NO to a fetch of the whole message)
  IMAP also takes "uidvalidity" (default 42).

Writes the port it listens on to PORTFILE, and one line per command to
LOGFILE ("<session> <command>", passwords replaced by ***).  A deleted
message (POP3 DELE + QUIT, IMAP \\Deleted + EXPUNGE) disappears from every
later session's mailbox (by NAME: another NAME with the same UIDL is
another message).  Stops after 60 connections or 10 minutes.
"""
import json
import os
import socket
import sys
import time


def load(scn):
    for name, m in scn["messages"].items():
        m["name"] = name
        with open(m["file"], "rb") as f:
            m["data"] = f.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class Conn:
    def __init__(self, sock, log, idx, drip, cut):
        self.s = sock
        self.f = sock.makefile("rb")
        self.log = log
        self.idx = idx
        self.drip = drip
        self.cut = cut

    def send(self, data, cmd=""):
        if isinstance(data, str):
            data = data.encode()
        k = self.cut
        if k and not k.get("done") and cmd.upper().startswith(k["after"].upper()):
            k["done"] = True
            self.s.sendall(data[: k["bytes"]])
            self.log.write("%d cut after %d bytes\n" % (self.idx, k["bytes"]))
            self.log.flush()
            raise ConnectionResetError("cut")
        d = self.drip
        if d and not d.get("done") and cmd.upper().startswith(d["after"].upper()):
            d["done"] = True
            for b in data:
                self.s.sendall(bytes([b]))
                time.sleep(d["every"])
            return
        self.s.sendall(data)

    def line(self):
        raw = self.f.readline(8192)
        if not raw:
            return None
        text = raw.decode("latin-1").rstrip("\r\n")
        shown = text
        up = text.upper()
        if up.startswith("PASS ") or " LOGIN " in up:
            shown = text.split(" ")[0] + " " + (" ".join(text.split(" ")[1:2]) + " ***" if " LOGIN " in up else "***")
        self.log.write("%d %s\n" % (self.idx, shown))
        self.log.flush()
        return text


def header_block(data):
    end = data.find(b"\r\n\r\n")
    return data[: end + 4] if end >= 0 else data


def serve_pop3(c, box, deleted):
    c.send("+OK scripted POP3 ready\r\n")
    marks = set()
    while True:
        cmd = c.line()
        if cmd is None:
            return
        parts = cmd.split()
        verb = parts[0].upper() if parts else ""
        live = [(i + 1, m) for i, m in enumerate(box)]
        if verb == "CAPA":
            c.send("+OK\r\nUSER\r\nUIDL\r\nTOP\r\n.\r\n", cmd)
        elif verb in ("USER", "PASS", "NOOP", "RSET"):
            if verb == "RSET":
                marks.clear()
            c.send("+OK\r\n", cmd)
        elif verb == "STAT":
            c.send("+OK %d %d\r\n" % (len(live), sum(len(m["data"]) for _, m in live)), cmd)
        elif verb in ("UIDL", "LIST") and len(parts) == 1:
            body = "".join("%d %s\r\n" % (n, m["uidl"] if verb == "UIDL" else len(m["data"]))
                           for n, m in live)
            c.send("+OK\r\n" + body + ".\r\n", cmd)
        elif verb in ("TOP", "RETR") and len(parts) >= 2:
            n = int(parts[1])
            if n < 1 or n > len(live) or n in marks:
                c.send("-ERR no such message\r\n", cmd)
                continue
            data = live[n - 1][1]["data"]
            if verb == "TOP":
                data = header_block(data)
            lines = data.split(b"\r\n")
            if lines and lines[-1] == b"":
                lines.pop()
            out = b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines)
            c.send(b"+OK\r\n" + out + b".\r\n", cmd)
        elif verb == "DELE" and len(parts) == 2:
            marks.add(int(parts[1]))
            c.send("+OK marked\r\n", cmd)
        elif verb == "QUIT":
            for n in marks:
                if 1 <= n <= len(live):
                    deleted.add(live[n - 1][1]["name"])
                    c.log.write("%d deleted %s\n" % (c.idx, live[n - 1][1]["uidl"]))
            c.log.flush()
            c.send("+OK bye\r\n", cmd)
            return
        else:
            c.send("-ERR unknown command\r\n", cmd)


def serve_imap(c, box, deleted, uidvalidity):
    c.send("* OK [CAPABILITY IMAP4rev1 UIDPLUS AUTH=PLAIN] scripted IMAP ready\r\n")
    flagged = set()
    while True:
        cmd = c.line()
        if cmd is None:
            return
        parts = cmd.split(" ")
        tag = parts[0]
        verb = " ".join(parts[1:3]).upper() if len(parts) > 2 and parts[1].upper() == "UID" else (parts[1].upper() if len(parts) > 1 else "")
        if verb == "CAPABILITY":
            c.send("* CAPABILITY IMAP4rev1 UIDPLUS AUTH=PLAIN\r\n%s OK done\r\n" % tag, cmd)
        elif verb == "LOGIN":
            c.send("%s OK logged in\r\n" % tag, cmd)
        elif verb == "AUTHENTICATE":
            if len(parts) < 4:
                c.send("+ \r\n")
                c.line()
            c.send("%s OK logged in\r\n" % tag, cmd)
        elif verb in ("SELECT", "EXAMINE"):
            c.send("* %d EXISTS\r\n* OK [UIDVALIDITY %d] x\r\n%s OK [READ-WRITE] selected\r\n"
                   % (len(box), uidvalidity, tag), cmd)
        elif verb == "UID FETCH":
            want_body = "BODY.PEEK[]" in cmd.upper()
            rng = parts[3]
            if want_body and any(str(m["uid"]) == rng and m.get("refuse") for m in box):
                c.send("%s NO [UNAVAILABLE] message cannot be fetched\r\n" % tag, cmd)
                continue
            out = b""
            for i, m in enumerate(box):
                if want_body and str(m["uid"]) != rng:
                    continue
                if want_body:
                    d = m["data"]
                    out += b"* %d FETCH (UID %d BODY[] {%d}\r\n" % (i + 1, m["uid"], len(d)) + d + b")\r\n"
                else:
                    h = header_block(m["data"])
                    out += (b"* %d FETCH (UID %d INTERNALDATE \"01-Dec-2026 10:00:00 +0000\" "
                            b"RFC822.SIZE %d BODY[HEADER.FIELDS (DATE FROM SENDER REPLY-TO SUBJECT "
                            b"MESSAGE-ID CONTENT-TYPE MIME-VERSION)]<0> {%d}\r\n" % (i + 1, m["uid"], len(m["data"]), len(h))
                            + h + b")\r\n")
            c.send(out + b"%s OK fetched\r\n" % tag.encode(), " ".join(parts[1:]))
        elif verb == "UID STORE":
            flagged.add(parts[3])
            c.send("%s OK stored\r\n" % tag, cmd)
        elif verb in ("UID EXPUNGE", "EXPUNGE"):
            for m in box:
                if str(m["uid"]) in flagged:
                    deleted.add(m["name"])
                    c.log.write("%d deleted %s\n" % (c.idx, m["uid"]))
            c.log.flush()
            c.send("%s OK expunged\r\n" % tag, cmd)
        elif verb == "NOOP":
            c.send("%s OK\r\n" % tag, cmd)
        elif verb == "LOGOUT":
            c.send("* BYE bye\r\n%s OK bye\r\n" % tag, cmd)
            return
        else:
            c.send("%s BAD unexpected\r\n" % tag, cmd)


def main():
    scn = json.load(open(sys.argv[1]))
    load(scn)
    log = open(sys.argv[3], "a")
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(600)
    with open(sys.argv[2] + ".tmp", "w") as f:
        f.write(str(srv.getsockname()[1]))
    os.rename(sys.argv[2] + ".tmp", sys.argv[2])
    deleted = set()
    drip = scn.get("drip")
    start = time.time()
    for idx in range(60):
        if time.time() - start > 600:
            break
        try:
            sock, _ = srv.accept()
        except socket.timeout:
            break
        sess = scn["sessions"][min(idx, len(scn["sessions"]) - 1)]
        box = [scn["messages"][n] for n in sess if n not in deleted]
        c = Conn(sock, log, idx + 1, drip, scn.get("cut"))
        try:
            if scn["protocol"] == "imap":
                serve_imap(c, box, deleted, scn.get("uidvalidity", 42))
            else:
                serve_pop3(c, box, deleted)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            c.f.close()     # the socket only closes with its file object
            sock.close()


if __name__ == "__main__":
    main()
