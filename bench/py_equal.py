#!/usr/bin/env python3
"""The equal-work Python agent (stdlib only, written as a user would): the same work as the agent's
CEF in RFC 5424 over TCP, for a fair comparison (py_agent.py, the seeds' approach, writes six fields).

Pulls every page of both apps from a CloudSOC-style API and writes each log as the agent does: the
header (signature, name, severity), `rt`, every mapped key in the agent's order with its label pairs
and cuts, `src`/`shost` from `host`, and every other field as a custom key `cloudsoc<CamelCase>`,
values escaped as CEF wants (nested values as compact JSON); inside an RFC 5424 header with the log's
time; one TCP send per message, LF-framed.
  py_equal.py CONFIG HOST:PORT [START]   (START: YYYY-MM-DDTHH:MM:SS, default 179 days ago)
"""
import base64, ipaddress, json, os, re, socket, sys, urllib.request
from datetime import datetime, timedelta, timezone

cfg = json.load(open(sys.argv[1]))
host, port = sys.argv[2].rsplit(":", 1)
auth = "Basic " + base64.b64encode(f"{cfg['key_id']}:{cfg['key_secret']}".encode()).decode()
start = sys.argv[3] if len(sys.argv) > 3 else (datetime.now(timezone.utc) - timedelta(days=179)).strftime("%Y-%m-%dT%H:%M:%S")
hdrs = {"Authorization": auth, "X-Elastica-Dbname-Resolved": "True"}
SEV = {"informational": 3, "low": 3, "warning": 5, "medium": 6, "error": 7, "high": 9, "critical": 10}
SYSLOG_SEV = {"critical": 2, "high": 2, "error": 3, "warning": 4, "medium": 4, "low": 5, "informational": 6}
LONG = 1023
# (fields, prefix, max): the agent's mapped keys, in its order.
MAPPINGS = [
    (("_id",), "externalId=", 40),
    (("user",), "suser=", LONG),
    (("service",), "destinationServiceName=", LONG),
    (("activity_type",), "act=", 63),
    (("object_type",), "cs1Label=objectType cs1=", LONG),
    (("message",), "msg=", LONG),
    (("threat_score",), "cn1Label=threatScore cn1=", LONG),
    (("user-agent",), "requestClientApplication=", LONG),
    (("name",), "fname=", LONG),
    (("object_name",), "filePath=", LONG),
    (("object_url",), "request=", LONG),
    (("policy_type",), "cs2Label=policyType cs2=", LONG),
    (("location", "locations"), "cs3Label=location cs3=", LONG),
    (("user_name",), "cs4Label=userName cs4=", LONG),
    (("ioi_code",), "cs5Label=ioiCode cs5=", LONG),
]
CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")


def text(v):
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def esc_h(v, limit):
    v = v[:limit].replace("\\", "\\\\").replace("|", "\\|")
    return CONTROL.sub(" ", v)


def esc_e(v, limit):
    v = v[:limit].replace("\\", "\\\\").replace("=", "\\=").replace("\n", "\\n").replace("\r", "\\r")
    return CONTROL.sub(" ", v)


def camel(name, i):
    runs = [r for r in re.split(r"[^A-Za-z0-9]+", name) if r]
    return "cloudsoc" + ("".join(r[0].upper() + r[1:] for r in runs) or f"Field{i}")


def is_ip(v):
    try:
        ipaddress.ip_address(v)
        return True
    except ValueError:
        return False


sock = socket.create_connection((host, int(port)))
hostname = socket.gethostname()
procid = str(os.getpid())
n = 0
for app in ("Investigate", "Detect"):
    subtype = "incidents" if app == "Detect" else "all"
    url = f"{cfg['api_server'].rstrip('/')}/{cfg['tenant']}/api/admin/v1/logs/get/?app={app}&subtype={subtype}&limit=1000&created_timestamp={start}"
    while url:
        req = urllib.request.Request(url, headers=hdrs)
        page = json.loads(urllib.request.urlopen(req).read())
        for log in page["logs"]:
            time_field = "incident_start_time" if app == "Detect" else "created_timestamp"
            used = {time_field}
            ts = text(log.get(time_field))
            try:
                t = datetime.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
            except ValueError:
                t = None
            kind = text(log.get("activity_type" if app == "Investigate" else "ioi_code"))
            message = text(log.get("message"))
            signature = f"{app}:{kind}"
            name = message or text(log.get("activity_type")) or signature
            sev = text(log.get("severity")).lower()
            ext = []
            if t is not None:
                ext.append(f"rt={int(t.timestamp() * 1000)}")
            for fields, prefix, limit in MAPPINGS:
                for f in fields:
                    v = text(log.get(f))
                    if v:
                        ext.append(prefix + esc_e(v, limit))
                        used.add(f)
                        break
            for f in ("host", "hosts"):
                v = text(log.get(f)).strip()
                if v:
                    ext.append(("src=" if is_ip(v) else "shost=") + esc_e(v, LONG))
                    used.add(f)
                    break
            for i, (k, v) in enumerate(log.items()):
                v = text(v)
                if k in used or not v:
                    continue
                ext.append(camel(k, i) + "=" + esc_e(v, 4000))
            cef = (f"CEF:0|Symantec|CloudSOC|0.1.0|{esc_h(signature, LONG)}|{esc_h(name, 512)}|"
                   f"{SEV.get(sev, 5)}|" + " ".join(ext))
            st = t or datetime.now(timezone.utc)
            stamp = st.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (st.microsecond // 1000)
            pri = 8 + SYSLOG_SEV.get(sev, 5)
            msg = f"<{pri}>1 {stamp} {hostname} siem-agent {procid} {app} - {cef}\n"
            sock.sendall(msg.encode("utf-8", "replace"))
            n += 1
        url = page.get("next_url")
sock.close()
print(n, file=sys.stderr)
