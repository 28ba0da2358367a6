#!/usr/bin/env python3
"""gen-maildir.py MAILDIR N: writes N messages straight into MAILDIR/cur.

Maildir names follow Dovecot's own ("TIME.MnPm.HOST,S=SIZE:2,") so Dovecot
indexes them on the first access without a delivery.  Subjects come in
families that bench/b1's 20 rules match; one message in 500 is a "Report"
whose body a ProcessBody rule must read.
"""
import os
import sys

FAMILIES = [
    "Run job PAYROLL{n} on {d}", "Invoice INV-{n}", "Alert: disk {n} full",
    "Backup {n} finished", "Newsletter issue {n}", "Meeting notes {n}",
    "Ticket #{n} updated", "Re: question {n}", "Shipping notice {n}",
    "Daily digest {n}",
]

def main():
    md, n = sys.argv[1], int(sys.argv[2])
    cur = os.path.join(md, "cur")
    os.makedirs(cur, exist_ok=True)
    t0 = 1764000000
    for i in range(1, n + 1):
        if i % 500 == 250:
            subj = "Report {} attached".format(i)
            body = "Status: OK\r\nJob: REPORT{}\r\n".format(i)
        else:
            subj = FAMILIES[i % len(FAMILIES)].format(n=i, d=i % 28 + 1)
            body = "hello {}\r\n".format(i)
        msg = ("Return-Path: <sender{m}@example.test>\r\n"
               "From: Sender {m} <sender{m}@example.test>\r\n"
               "To: alice@contoso.test\r\n"
               "Subject: {s}\r\n"
               "Date: Mon, 24 Nov 2025 10:{mm:02d}:00 +0000\r\n"
               "Message-ID: <bench-{i}@example.test>\r\n"
               "MIME-Version: 1.0\r\n"
               "Content-Type: text/plain; charset=utf-8\r\n"
               "\r\n{b}").format(m=i % 37, s=subj, mm=i % 60, i=i, b=body)
        data = msg.encode()
        name = "{}.M{}P{}.bench,S={}:2,".format(t0 + i, i, os.getpid(), len(data))
        with open(os.path.join(cur, name), "wb") as f:
            f.write(data)

if __name__ == "__main__":
    main()
