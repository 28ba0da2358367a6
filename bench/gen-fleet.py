#!/usr/bin/env python3
"""gen-fleet.py DIR JOBS MACHINES INIS [basic]: a fleet folder for bench B3.

JOBS jobs over MACHINES machines and INIS INI files (INIS/MACHINES per
machine; several jobs share each INI).  The jobs are spread over all three
export shapes: REST JSON arrays (jobs/rest), deploy packages
(jobs/deploy, {"scheduleList":[{"jobList":[...]}]}) and Schedule Extract
XML (jobs/extract), one file of each shape per machine.  One job in ten is
a non-connector Windows job.  INI files alternate basic-auth IMAP and POP
against Exchange Online with already-migrated OAuth ones; with "basic"
every INI is a basic-auth one that needs migration (bench B4).
"""
import json
import os
import sys
from xml.sax.saxutils import escape

def ini_text(m, k, basic=False):
    kind = k % 2 if basic else k % 4
    head = ("[General]\r\nMSGINDirectory=%PROGRAMDATA%\\OpConxps\\SAM\\MSGIN\r\n"
            "DeleteEmails=Match\r\nExitCodeForNoMatchingEmails=0\r\n"
            "UseLastRunDate=True\r\n\r\n")
    user = "box{}-{}@contoso.com".format(m, k)
    if kind == 0:
        mail = ("[Mail]\r\nUser={}\r\nPassword=N/A\r\nServer=outlook.office365.com\r\n"
                "EmailProtocol=IMAP\r\nSecurityProtocol=SSL\r\nPort=993\r\n\r\n").format(user)
    elif kind == 1:
        mail = ("[Mail]\r\nUser={}\r\nPassword=N/A\r\nServer=outlook.office365.com\r\n"
                "EmailProtocol=POP\r\nSecurityProtocol=SSL\r\nPort=995\r\n\r\n").format(user)
    elif kind == 2:
        mail = ("[Mail]\r\nUser={}\r\nEmailProtocol=GRAPH\r\n\r\n[OAuth]\r\n"
                "TenantId=7f3c9a2e-5b1d-4e8a-9c6f-2d4b8e1a7c35\r\n"
                "ClientId=0b8e4f21-9a3c-4d7e-b5f2-6c1a9e8d3b47\r\n"
                "ClientSecret=env:MAILSHIFT_SECRET\r\n\r\n").format(user)
    else:
        mail = ("[Mail]\r\nUser={}\r\nPassword=N/A\r\nServer=mail.onprem.example\r\n"
                "EmailProtocol=IMAP\r\nSecurityProtocol=SSL\r\nPort=993\r\n\r\n").format(user)
    rules = ("[Configuration1]\r\nSubjectLineMask=^Run job (\\S+) on (\\d+)$\r\n"
             "Event=$JOB:ADD,[[$DATE]],SCHED,[[1]],OCADHOC\r\n\r\n"
             "[Configuration2]\r\nSubjectLineMask=^Invoice (\\S+)\r\n"
             "Event=$PROPERTY:SET,LAST_INVOICE,[[1]]\r\n")
    return head + mail + rules

def cmdline(m, k, j):
    if j % 10 == 9:
        return "C:\\Tools\\report.exe /job {} /out D:\\Reports".format(j)
    ini = "D:\\Jobs\\grp{}\\mail{}.ini".format(k % 7, k)
    if j % 3 == 0:
        return '"C:\\Program Files\\OpConxps\\SMArt Email\\SMArtEmail.exe" -inifile:"{}"'.format(ini)
    if j % 3 == 1:
        return 'cmd /c "C:\\PROGRA~1\\OpConxps\\SMARTE~1\\SMARTE~1.EXE" -inifile:"{}" --delete'.format(ini)
    return "smartemail.exe -inifile:{}".format(ini)

def main():
    d, njobs, nmach, nini = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    basic = len(sys.argv) > 5 and sys.argv[5] == "basic"
    per_mach = max(1, nini // nmach)
    for sub in ("rest", "deploy", "extract"):
        os.makedirs(os.path.join(d, "jobs", sub), exist_ok=True)
    for m in range(nmach):
        mname = "WIN{:04d}".format(m)
        for k in range(per_mach):
            p = os.path.join(d, "machines", mname, "D", "Jobs", "grp{}".format(k % 7))
            os.makedirs(p, exist_ok=True)
            with open(os.path.join(p, "mail{}.ini".format(k)), "w", newline="") as f:
                f.write(ini_text(m, k, basic))
    j = 0
    per_job_mach = njobs // nmach
    extra = njobs - per_job_mach * nmach
    for m in range(nmach):
        mname = "WIN{:04d}".format(m)
        n = per_job_mach + (1 if m < extra else 0)
        rest, deploy, xml = [], [], []
        for i in range(n):
            k = i % per_mach
            name = "MAIL-{}-{}".format(m, i)
            sched = "SCHED-{}".format(m % 50)
            cl = cmdline(m, k, j)
            shape = i % 3
            if shape == 0:
                rest.append({"id": j, "name": name, "schedule": {"name": sched},
                             "jobType": {"description": "Windows"},
                             "primaryMachine": {"name": mname},
                             "details": {"commandLine": cl, "workingDirectory": "D:\\Jobs",
                                         "batchUser": {"loginName": "CONTOSO\\svc_mail"}}})
            elif shape == 1:
                deploy.append({"name": name, "jobType": {"description": "Windows"},
                               "primaryMachine": {"name": mname},
                               "windowsDetails": {"commandLine": cl,
                                                  "workingDirectory": "D:\\Jobs",
                                                  "batchUser": "CONTOSO\\svc_mail"}})
            else:
                xml.append("  <job>\n    <skdname>{}</skdname>\n    <jname>{}</jname>\n"
                           "    <pmname>{}</pmname>\n    <jobtype>Windows</jobtype>\n"
                           "    <jobdata>\n      <cmd_line>{}</cmd_line>\n"
                           "      <working_dir>D:\\Jobs</working_dir>\n"
                           "      <wuid>CONTOSO\\svc_mail</wuid>\n    </jobdata>\n  </job>\n"
                           .format(sched, name, mname, escape(cl, {'"': "&quot;"})))
            j += 1
        with open(os.path.join(d, "jobs", "rest", mname + ".json"), "w") as f:
            json.dump(rest, f, indent=1)
        with open(os.path.join(d, "jobs", "deploy", mname + "-package.json"), "w") as f:
            json.dump({"packageName": mname, "scheduleList":
                       [{"name": "SCHED-{}".format(m % 50), "jobList": deploy}]}, f, indent=1)
        with open(os.path.join(d, "jobs", "extract", mname + ".xml"), "w") as f:
            f.write('<?xml version="1.0" encoding="utf-8"?>\n<jobs>\n')
            f.writelines(xml)
            f.write("</jobs>\n")

if __name__ == "__main__":
    main()
