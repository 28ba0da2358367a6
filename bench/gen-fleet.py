#!/usr/bin/env python3
"""Make a fleet folder (jobs/ exports + machines/ INI files) for the benchmarks.

usage: gen-fleet.py [options] DIR JOBS MACHINES INIS [basic]

JOBS jobs over MACHINES agent machines, INIS INI files under
machines/NAME/... (INIS/MACHINES per machine).  Two generators:

realistic (default)  what an OpCon shop exports: full REST job objects
                     (~3-5 KB each: frequencies, dependencies, threshold and
                     resource dependencies, events, documentation, tags),
                     Deploy packages (scheduleList/jobList, windowsDetails),
                     Schedule Extract XML with its usual fields; one machine
                     in 25 exports its REST file as UTF-16LE with a BOM; CRLF
                     everywhere.  A few percent of the jobs run the
                     connector (--connector-share, default 0.08), the
                     others are Windows, SQL, Unix and file-transfer jobs.
                     INI files are 40-80 lines with comments and several
                     [ConfigurationN] rules; about one connector job in
                     four shares its INI file with another, some use the
                     default SMArtEmail.ini, and the INI files no job uses
                     are orphans.
--thin               the old generator: ~300-byte jobs, 9 in 10 of them
                     connector jobs, short INI files (the B3 figures before
                     issue 16 were measured on it)

With "basic" (or --basic) every INI file is a basic-auth IMAP or POP
mailbox at contoso.com that needs migrating (bench B4, samples/map.json).
--manifest FILE writes what was generated (connector jobs, INI files used,
orphans, bytes) as JSON, for tests to compare with the audit's report.
"""
import argparse
import json
import os
import random
import sys
from xml.sax.saxutils import escape

CRLF = "\r\n"

# ------------------------------------------------------------------ thin
def thin_ini_text(m, k, basic=False):
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


def thin_cmdline(k, j):
    if j % 10 == 9:
        return "C:\\Tools\\report.exe /job {} /out D:\\Reports".format(j)
    ini = "D:\\Jobs\\grp{}\\mail{}.ini".format(k % 7, k)
    if j % 3 == 0:
        return '"C:\\Program Files\\OpConxps\\SMArt Email\\SMArtEmail.exe" -inifile:"{}"'.format(ini)
    if j % 3 == 1:
        return 'cmd /c "C:\\PROGRA~1\\OpConxps\\SMARTE~1\\SMARTE~1.EXE" -inifile:"{}" --delete'.format(ini)
    return "smartemail.exe -inifile:{}".format(ini)


def thin(a):
    d, njobs, nmach, nini, basic = a.dir, a.jobs, a.machines, a.inis, a.basic
    per_mach = max(1, nini // nmach)
    man = {"generator": "thin", "jobs": njobs, "connector_jobs": 0, "inis": 0}
    for sub in ("rest", "deploy", "extract"):
        os.makedirs(os.path.join(d, "jobs", sub), exist_ok=True)
    for m in range(nmach):
        mname = "WIN{:04d}".format(m)
        for k in range(per_mach):
            p = os.path.join(d, "machines", mname, "D", "Jobs", "grp{}".format(k % 7))
            os.makedirs(p, exist_ok=True)
            with open(os.path.join(p, "mail{}.ini".format(k)), "w", newline="") as f:
                f.write(thin_ini_text(m, k, basic))
            man["inis"] += 1
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
            cl = thin_cmdline(k, j)
            if j % 10 != 9:
                man["connector_jobs"] += 1
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
    return man

# ------------------------------------------------------------- realistic
WORDS = ("the job reads the mailbox of the accounts payable team and raises an event "
         "for each invoice that arrives from a known vendor; escalation goes to the "
         "operations desk during business hours and to the on-call engineer otherwise; "
         "see the runbook in the wiki before restarting; depends on the nightly ledger "
         "close and on the file transfer from the bank; owner finance IT; change "
         "requests through the CAB; last reviewed after the 2025 audit").split()

DEFAULT_INI = "C:\\ProgramData\\OpConxps\\SMArt Email\\SMArtEmail.ini"


def prose(rnd, n):
    return " ".join(rnd.choice(WORDS) for _ in range(n))


def ini_text(rnd, m, k, basic):
    """An INI file of 40-80 lines with comments, as operators keep them."""
    kind = k % 2 if basic else k % 5
    user = "box{}-{}@{}".format(m, k, "contoso.com" if basic or k % 3 else "fabrikam.com")
    L = ["; SMArt Email configuration - machine WIN{:04d}, mailbox {}".format(m, user),
         "; maintained by the operations team; do not edit during the batch window",
         "; change log: 2019-03-02 created, 2021-11-15 new rules, 2024-06-30 review",
         "",
         "[General]",
         "; where the events go (the SAM MSGIN folder)",
         "MSGINDirectory=%PROGRAMDATA%\\OpConxps\\SAM\\MSGIN",
         "OpConUser=svc_opcon",
         "DeleteEmails=Match",
         "DownloadEmails=False",
         "ExitCodeForNoMatchingEmails={}".format(k % 2),
         "UseLastRunDate=True",
         "LastRunDate=11/27/2026 6:00:00 PM",
         "LogLevel=Info",
         ""]
    L.append("[Mail]")
    L.append("; the mailbox this job polls")
    if kind == 0:
        L += ["User=" + user, "Password=N/A", "Server=outlook.office365.com",
              "EmailProtocol=IMAP", "SecurityProtocol=SSL", "Port=993"]
    elif kind == 1:
        L += ["User=" + user, "Password=N/A", "Server=outlook.office365.com",
              "EmailProtocol=POP", "SecurityProtocol=SSL", "Port=995"]
    elif kind == 2:
        L += ["User=" + user, "EmailProtocol=GRAPH", "", "[OAuth]",
              "; app registration in Entra ID, secret in the credential store",
              "TenantId=7f3c9a2e-5b1d-4e8a-9c6f-2d4b8e1a7c35",
              "ClientId=0b8e4f21-9a3c-4d7e-b5f2-6c1a9e8d3b47",
              "ClientSecret=env:MAILSHIFT_SECRET"]
    elif kind == 3:
        L += ["User=" + user, "Password=N/A", "Server=mail.onprem.example",
              "EmailProtocol=IMAP", "SecurityProtocol=SSL", "Port=993"]
    else:
        L += ["User=" + user, "Password=N/A", "Server=outlook.office365.com",
              "EmailProtocol=IMAP", "SecurityProtocol=TLS", "Port=143"]
    L.append("")
    want = rnd.randint(40, 80)
    c = 1
    while len(L) < want - 1:
        L += ["; rule {}: {}".format(c, prose(rnd, 8)),
              "[Configuration{}]".format(c),
              "SubjectLineMask=^{} (\\S+) on (\\d+)$".format(rnd.choice(
                  ("Run job", "Invoice", "Alert", "Backup", "Ticket", "Report"))),
              "Event=$JOB:ADD,[[$DATE]],SCHED-{},[[1]],OCADHOC".format(m % 50)]
        if c % 2 == 0:
            L += ["AllowedSenders=ops@contoso.com;billing@northwind.com",
                  "ProcessBody=False"]
        if c % 3 == 0:
            L += ["ProcessAttachments=true", "AttachmentMask=.*\\.pdf$",
                  "Event2=$PROPERTY:SET,LAST_{}_{},[[2]]".format(m, c)]
        L.append("")
        c += 1
    return CRLF.join(L[:max(want, 40)]) + CRLF


CONNECTOR_FORMS = (
    '"C:\\Program Files\\OpConxps\\SMArt Email\\SMArtEmail.exe" -inifile:"{ini}"',
    'cmd /c "C:\\PROGRA~1\\OpConxps\\SMARTE~1\\SMARTE~1.EXE" -inifile:"{ini}" --delete',
    'smartemail.exe -inifile:{ini}',
    'C:\\OpCon\\bin\\SMArtEmail.exe -inifile:"{ini}" -v',
)
OTHER = (
    ("Windows", "C:\\Tools\\report.exe /job {j} /out D:\\Reports\\[[$DATE]]"),
    ("Windows", "powershell.exe -NoProfile -File D:\\Scripts\\load-{j}.ps1 -Env PROD"),
    ("Windows", "\"C:\\Program Files\\Vendor\\Batch\\run.exe\" /profile:nightly /id {j}"),
    ("SQL", "EXEC dbo.close_period @job = {j}"),
    ("UNIX", "/opt/batch/bin/extract.sh --job {j} --target /data/out"),
    ("File Transfer", "sftp://bank.example/outbox/{j}.csv"),
)


def rest_job(rnd, j, name, sched, mname, jtype, cl, wd, doc):
    """An OpCon REST master-job object, as GET /api/masterjobs returns it."""
    deps = [{"id": 90000 + j * 4 + i, "dependencyType": "Requires",
             "predecessor": {"job": {"name": "JOB-{}".format(rnd.randrange(1, 999999))},
                             "schedule": {"name": sched}},
             "options": {"checkPriorDay": False, "treatAsOptional": i == 1,
                         "waitForJobInstance": "Any", "offset": 0}}
            for i in range(rnd.randint(1, 3))]
    freqs = [{"name": fname, "id": 300 + i, "isDefault": i == 0,
              "calendarName": "Master Holiday", "startTime": "{:02d}:{:02d}".format(
                  rnd.randrange(24), rnd.randrange(60)),
              "latestStartTime": "23:59", "latestFinishTime": "+1 06:00",
              "estimatedRunTime": rnd.randrange(60, 3600), "minimumRunTime": 0,
              "maximumRunTime": 7200, "priority": rnd.randrange(0, 100),
              "onHolidayAction": "Run on the day before",
              "instances": [{"name": "default", "properties": []}],
              "afterLatestStartAction": "Skip", "runDays": "MTWTF--"}
             for i, fname in enumerate(rnd.sample(("Daily", "Weekdays", "MonthEnd",
                                                   "Quarter", "OnRequest"), 2))]
    return {
        "id": j, "name": name, "documentation": doc,
        "schedule": {"id": 7000 + int(sched.split("-")[1]), "name": sched},
        "jobType": {"id": 0, "description": jtype},
        "primaryMachine": {"id": 500 + int(mname[3:]), "name": mname},
        "alternateMachines": [{"name": "WIN{:04d}".format(rnd.randrange(9999))}],
        "machineGroup": None, "departmentName": "FINANCE-IT",
        "accessCodeName": "FIN-BATCH", "tags": ["finance", "mail", "tier{}".format(j % 3)],
        "disabled": False, "isCritical": j % 17 == 0,
        "frequencies": freqs, "jobDependencies": deps,
        "thresholdDependencies": [{"threshold": {"name": "MAX_PARALLEL_FIN"},
                                   "operator": "<=", "value": "5"}],
        "resourceDependencies": [{"resource": {"name": "DB_SLOTS"}, "value": 1}],
        "events": [{"trigger": "Failed", "event": "$NOTIFY:EMAIL,opsdesk@contoso.com,"
                    "Job [[$JOB NAME]] failed,see [[$SCHEDULE NAME]]"}],
        "details": {"commandLine": cl, "workingDirectory": wd,
                    "batchUser": {"id": 12, "loginName": "CONTOSO\\svc_batch"},
                    "preRunCommandLine": "", "runInteractive": False,
                    "environmentVariables": [{"name": "APP_ENV", "value": "PROD"},
                                             {"name": "LOG_DIR", "value": "D:\\Logs"}],
                    "exitCodes": [{"operator": "EqualTo", "value": 0, "result": "Finished OK"},
                                  {"operator": "GreaterThan", "value": 0, "result": "Failed"}],
                    "failureCriteria": "Exit code", "killJobOnTimeout": True,
                    "timeoutMinutes": 120},
    }


def xml_job(rnd, sched, name, mname, jtype, cl, wd, doc):
    freq = "".join(
        "    <freq>\r\n      <fname>{}</fname>\r\n      <calname>Master Holiday</calname>\r\n"
        "      <ststart>{:02d}00</ststart>\r\n      <lateststart>2359</lateststart>\r\n"
        "      <estrun>{}</estrun>\r\n      <priority>{}</priority>\r\n"
        "      <hldyact>B</hldyact>\r\n    </freq>\r\n".format(f, rnd.randrange(24),
                                                           rnd.randrange(60, 3600),
                                                           rnd.randrange(100))
        for f in ("Daily", "MonthEnd"))
    dep = "".join("    <jdep>\r\n      <depjname>JOB-{}</depjname>\r\n"
                  "      <depskdname>{}</depskdname>\r\n      <deptype>A</deptype>\r\n"
                  "    </jdep>\r\n".format(rnd.randrange(999999), sched) for _ in range(2))
    return ("  <job>\r\n    <skdname>{s}</skdname>\r\n    <jname>{n}</jname>\r\n"
            "    <pmname>{m}</pmname>\r\n    <jobtype>{t}</jobtype>\r\n"
            "    <jdesc>{d}</jdesc>\r\n    <dept>FINANCE-IT</dept>\r\n"
            "    <accesscode>FIN-BATCH</accesscode>\r\n    <critical>0</critical>\r\n"
            "    <jobdata>\r\n      <cmd_line>{c}</cmd_line>\r\n"
            "      <working_dir>{w}</working_dir>\r\n      <wuid>CONTOSO\\svc_batch</wuid>\r\n"
            "      <prerun></prerun>\r\n      <interactive>N</interactive>\r\n"
            "      <failcrit>=0</failcrit>\r\n    </jobdata>\r\n{f}{dp}"
            "    <event>\r\n      <trigger>F</trigger>\r\n"
            "      <evtext>$NOTIFY:EMAIL,opsdesk@contoso.com,Job failed</evtext>\r\n"
            "    </event>\r\n  </job>\r\n").format(
                s=escape(sched), n=escape(name), m=mname, t=jtype, d=escape(doc),
                c=escape(cl, {'"': "&quot;"}), w=escape(wd), f=freq, dp=dep)


def realistic(a):
    rnd = random.Random(a.seed)
    d, njobs, nmach, nini, basic = a.dir, a.jobs, a.machines, a.inis, a.basic
    per_mach = max(1, nini // nmach)
    man = {"generator": "realistic", "jobs": njobs, "connector_jobs": 0, "inis": 0,
           "inis_used": 0, "orphan_inis": 0, "default_ini_jobs": 0, "utf16_files": 0,
           "bytes": 0}
    for sub in ("rest", "deploy", "extract"):
        os.makedirs(os.path.join(d, "jobs", sub), exist_ok=True)
    per_job_mach = njobs // nmach
    extra = njobs - per_job_mach * nmach
    # connector jobs: spread evenly, share of the jobs (at least one per machine)
    j = 0
    for m in range(nmach):
        mname = "WIN{:04d}".format(m)
        n = per_job_mach + (1 if m < extra else 0)
        nconn = min(n, max(1, int(round(n * a.connector_share))))
        # INI files of this machine; job c uses ini c - c//4 (one in four shares)
        used = set()
        conn_at = set(rnd.sample(range(n), nconn)) if n else set()
        c = 0
        rest, deploy, xml = [], [], []
        sched = "SCHED-{}".format(m % 50)
        for i in range(n):
            name = "{}-JOB-{:05d}".format(mname, i)
            wd = "D:\\Jobs"
            if i in conn_at:
                k = c - c // 4
                c += 1
                if k >= per_mach or (m % 10 == 3 and c == 1):
                    ini = DEFAULT_INI
                    cl = "\"C:\\Program Files\\OpConxps\\SMArt Email\\SMArtEmail.exe\""
                    man["default_ini_jobs"] += 1
                    used.add(-1)
                else:
                    ini = "D:\\Jobs\\grp{}\\mail{}.ini".format(k % 7, k)
                    cl = CONNECTOR_FORMS[j % len(CONNECTOR_FORMS)].format(ini=ini)
                    used.add(k)
                jtype = "Windows"
                man["connector_jobs"] += 1
            else:
                jtype, cl = OTHER[j % len(OTHER)]
                cl = cl.format(j=j)
            doc = prose(rnd, rnd.randint(60, 160))
            shape = i % 3
            if shape == 0:
                rest.append(rest_job(rnd, j, name, sched, mname, jtype, cl, wd, doc))
            elif shape == 1:
                o = rest_job(rnd, j, name, sched, mname, jtype, cl, wd, doc)
                o["windowsDetails"] = o.pop("details")
                o["windowsDetails"]["batchUser"] = "CONTOSO\\svc_batch"
                del o["schedule"]
                deploy.append(o)
            else:
                xml.append(xml_job(rnd, sched, name, mname, jtype, cl, wd, doc))
            j += 1
        # the INI files: used ones, then orphans
        for k in range(per_mach):
            p = os.path.join(d, "machines", mname, "D", "Jobs", "grp{}".format(k % 7))
            os.makedirs(p, exist_ok=True)
            t = ini_text(rnd, m, k, basic)
            with open(os.path.join(p, "mail{}.ini".format(k)), "w", newline="") as f:
                f.write(t)
            man["bytes"] += len(t)
            man["inis"] += 1
            if k in used:
                man["inis_used"] += 1
            else:
                man["orphan_inis"] += 1
        if -1 in used:
            p = os.path.join(d, "machines", mname, "C", "ProgramData", "OpConxps", "SMArt Email")
            os.makedirs(p, exist_ok=True)
            t = ini_text(rnd, m, 9999, basic)
            with open(os.path.join(p, "SMArtEmail.ini"), "w", newline="") as f:
                f.write(t)
            man["bytes"] += len(t)
            man["inis"] += 1
            man["inis_used"] += 1
        text = json.dumps(rest, indent=2).replace("\n", CRLF)
        if m % 25 == 7:
            data = b"\xff\xfe" + text.encode("utf-16-le")
            man["utf16_files"] += 1
        else:
            data = text.encode()
        with open(os.path.join(d, "jobs", "rest", mname + ".json"), "wb") as f:
            f.write(data)
        man["bytes"] += len(data)
        text = json.dumps({"packageName": mname, "version": "22.0", "exportedBy": "deploy",
                           "scheduleList": [{"name": sched, "jobList": deploy}]},
                          indent=2).replace("\n", CRLF)
        with open(os.path.join(d, "jobs", "deploy", mname + "-package.json"), "w",
                  newline="") as f:
            f.write(text)
        man["bytes"] += len(text)
        with open(os.path.join(d, "jobs", "extract", mname + ".xml"), "w", newline="") as f:
            f.write('<?xml version="1.0" encoding="utf-8"?>\r\n<!-- Schedule Extract, {} -->'
                    '\r\n<jobs>\r\n'.format(mname))
            f.writelines(xml)
            f.write("</jobs>\r\n")
            man["bytes"] += f.tell()
    return man


def main():
    ap = argparse.ArgumentParser(
        prog="gen-fleet.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("dir", metavar="DIR", help="the fleet folder to create")
    ap.add_argument("jobs", metavar="JOBS", type=int, help="number of jobs")
    ap.add_argument("machines", metavar="MACHINES", type=int, help="number of agent machines")
    ap.add_argument("inis", metavar="INIS", type=int, help="number of INI files")
    ap.add_argument("mode", metavar="basic", nargs="?", choices=("basic",),
                    help="every INI a basic-auth mailbox to migrate (same as --basic)")
    ap.add_argument("--basic", action="store_true", help="same as the word basic")
    ap.add_argument("--thin", action="store_true", help="the old thin generator")
    ap.add_argument("--connector-share", type=float, default=0.08, metavar="F",
                    help="share of the jobs that run the connector (realistic; default 0.08)")
    ap.add_argument("--seed", type=int, default=16, help="random seed (default 16)")
    ap.add_argument("--manifest", metavar="FILE", help="write what was made as JSON")
    a = ap.parse_args()
    a.basic = a.basic or a.mode == "basic"
    if a.jobs < 0 or a.machines < 1 or a.inis < 1:
        ap.error("JOBS >= 0, MACHINES >= 1 and INIS >= 1")
    man = thin(a) if a.thin else realistic(a)
    if a.manifest:
        with open(a.manifest, "w") as f:
            json.dump(man, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
