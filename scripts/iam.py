#!/usr/bin/env python3
"""The IAM of the deployed stack, read from the SAM-transformed template (the roles CloudFormation will create).

  iam.py check TEMPLATE
      Static checks of what moto cannot see (scripts/check-infra.sh runs it):
      - every function that reads objects that may be absent holds s3:ListBucket on the bucket (real S3 answers a
        missing key with 403 AccessDenied instead of 404 NoSuchKey without it; moto answers 404 either way);
      - no function statement grants a wildcard action or an unscoped resource;
      - the state machine's role may invoke every function a Task of the definition names, and nothing else;
      - the EventBridge rule's and the schedule's roles may start the state machine;
      - every Lambda target of an EventBridge rule has a resource policy letting events.amazonaws.com invoke it;
      - the lease function may describe the executions of the dncflow state machine (to take over the lease of one
        that has ended), and no other state machine's.

  iam.py policies TEMPLATE --bucket B --secret-arn ARN [--account ID] [--region R] [--drop FUNCTION:STATEMENT]
      Prints {binary: policyDocument} with the intrinsics resolved, for the IAM-enforced end-to-end test, which gives
      each function binary an IAM user holding exactly its role's statements. `--drop upload:1` removes statement 1
      (0-based, over the role's inline policies in order) of the upload function (the negative test).
      moto evaluates Secrets Manager, EventBridge and Step Functions calls against the resource "*" (it derives no ARN
      for them), so statements of those services get "*" here; their resources are checked statically by `check`.

  iam.py moto-world TEMPLATE --endpoint URL --bucket B --secret-name N --secret-string S [--drop FUNCTION:STATEMENT]
                    [--audit-key-secret NAME]
      For moto_server started with INITIAL_NO_AUTH_ACTION_COUNT=3: its first three (unauthenticated) requests make an
      admin user; with the admin's keys it creates the bucket, the secret, and one IAM user per function holding
      exactly that function's statements (as `policies`). Prints {"admin": keys, "secretArn", "functions": {binary:
      keys}}, keys being {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

# Functions that read objects which may not exist yet (a list's first status or received document, a canary, a
# snapshot, a ledger segment of a run still uploading): they need s3:ListBucket to be told "absent" instead of
# "denied".
READS_ABSENT = {"normalize", "cooldown", "reconcile", "record-failure", "check", "lease"}


def transform(template):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    try:
        subprocess.run([sys.executable, os.path.join(HERE, "sam_transform.py"), template, out], check=True)
        with open(out) as f:
            return json.load(f)
    finally:
        os.unlink(out)


class Resolver:
    """Evaluates the intrinsics the roles use, with the bucket, secret, account and region of one deployment."""

    def __init__(self, template, bucket, secret_arn, account, region):
        self.resources = template["Resources"]
        self.params = {
            "CxoneSecretArn": secret_arn,
            "AWS::Partition": "aws",
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::StackName": "dncflow",
        }
        for name, p in template.get("Parameters", {}).items():
            self.params.setdefault(name, str(p.get("Default", "")))
        self.bucket = bucket
        self.account = account
        self.region = region

    def ref(self, name):
        if name in self.params:
            return self.params[name]
        kind = self.resources[name]["Type"]
        if kind == "AWS::S3::Bucket":
            return self.bucket
        if kind == "AWS::StepFunctions::StateMachine":
            named = self.resources[name]["Properties"].get("StateMachineName")
            return f"arn:aws:states:{self.region}:{self.account}:stateMachine:{self.resolve(named) if named else name}"
        return name  # functions, roles, rules: their physical name

    def get_att(self, name, attr):
        kind = self.resources[name]["Type"]
        if attr != "Arn":
            return f"{name}.{attr}"
        if kind == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{self.bucket}"
        if kind == "AWS::Lambda::Function":
            return f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"
        if kind == "AWS::IAM::Role":
            return f"arn:aws:iam::{self.account}:role/{name}"
        if kind == "AWS::Logs::LogGroup":
            return f"arn:aws:logs:{self.region}:{self.account}:log-group:{name}:*"
        return f"arn:aws:{kind}:{name}"

    def sub(self, text, variables):
        def one(m):
            key = m.group(1)
            if key in variables:
                return str(self.resolve(variables[key]))
            if "." in key and key.split(".")[0] in self.resources:
                res, attr = key.split(".", 1)
                return self.get_att(res, attr)
            return str(self.ref(key))

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    def resolve(self, node):
        if isinstance(node, list):
            return [self.resolve(n) for n in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (k, v), = node.items()
            if k == "Ref":
                return self.ref(v)
            if k == "Fn::GetAtt":
                return self.get_att(*(v if isinstance(v, list) else v.split(".", 1)))
            if k == "Fn::Sub":
                return self.sub(v, {}) if isinstance(v, str) else self.sub(v[0], v[1])
            if k == "Fn::Join":
                return v[0].join(str(self.resolve(x)) for x in v[1])
        return {k: self.resolve(v) for k, v in node.items()}


def role_statements(template, resolver, role):
    """The statements of `role`'s inline policies, resolved, in order."""
    out = []
    for policy in template["Resources"][role]["Properties"].get("Policies", []):
        statements = policy["PolicyDocument"]["Statement"]
        for s in statements if isinstance(statements, list) else [statements]:
            out.append(resolver.resolve(s))
    return out


def as_list(x):
    return x if isinstance(x, list) else [x]


def glob(pattern, value):
    return re.fullmatch(re.escape(pattern).replace(r"\*", ".*").replace(r"\?", "."), value) is not None


def allows(statements, action, resource):
    """Whether an Allow statement (without conditions) grants `action` on `resource` and no Deny refuses it."""
    granted = False
    for s in statements:
        if not any(glob(a.lower(), action.lower()) for a in as_list(s.get("Action", []))):
            continue
        if not any(glob(r, resource) for r in as_list(s.get("Resource", []))):
            continue
        if s.get("Effect") == "Deny":
            return False
        if "Condition" not in s:
            granted = True
    return granted


def functions(template):
    """{logical id: binary} of the template's functions."""
    out = {}
    for name, r in template["Resources"].items():
        if r["Type"] == "AWS::Lambda::Function":
            binary = name[: -len("Function")] if name.endswith("Function") else name
            out[name] = re.sub(r"(?<!^)(?=[A-Z])", "-", binary).lower()
    return out


def function_role(template, fn):
    role = template["Resources"][fn]["Properties"]["Role"]
    return role["Fn::GetAtt"][0]


def check(template_path):
    template = transform(template_path)
    r = Resolver(template, "dncflow-bucket", "arn:aws:secretsmanager:us-east-1:123456789012:secret:cxone-AbCdEf",
                 "123456789012", "us-east-1")
    res = template["Resources"]
    problems = []
    fns = functions(template)
    bucket_arn = "arn:aws:s3:::dncflow-bucket"
    for fn, binary in fns.items():
        st = role_statements(template, r, function_role(template, fn))
        for s in st:
            for a in as_list(s.get("Action", [])):
                if a == "*" or a.endswith(":*"):
                    problems.append(f"{fn}: wildcard action {a}")
            for rs in as_list(s.get("Resource", [])):
                if rs == "*" or rs == "arn:aws:s3:::*":
                    problems.append(f"{fn}: unscoped resource for {s.get('Action')}")
        has_list = allows(st, "s3:ListBucket", bucket_arn)
        if binary in READS_ABSENT and not has_list:
            problems.append(f"{fn} reads objects that may be absent but lacks s3:ListBucket on the bucket "
                            f"(real S3 would answer 403 AccessDenied, not NoSuchKey)")
        print(f"  {binary}: {len(st)} statements, ListBucket={'yes' if has_list else 'no'}")

    for name, sm in res.items():
        if sm["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        machine_arn = r.ref(name)
        role = sm["Properties"]["RoleArn"]["Fn::GetAtt"][0]
        st = role_statements(template, r, role)
        text = r.resolve(sm["Properties"]["DefinitionString"])
        subs = {k: r.resolve(v) for k, v in sm["Properties"].get("DefinitionSubstitutions", {}).items()}
        for k, v in subs.items():
            text = text.replace("${" + k + "}", str(v))
        tasks = set(re.findall(r'"Resource":\s*"(arn:aws:lambda:[^"]+)"', text))
        if not tasks:
            problems.append(f"{name}: no Task resource found in the definition")
        for arn in sorted(tasks):
            if not allows(st, "lambda:InvokeFunction", arn):
                problems.append(f"{name}'s role may not invoke {arn}")
        for fn in fns:
            arn = r.get_att(fn, "Arn")
            if arn not in tasks and fn != "CheckFunction" and allows(st, "lambda:InvokeFunction", arn):
                problems.append(f"{name}'s role may invoke {fn}, which no Task uses")
        print(f"  {name}: invokes {len(tasks)} functions")
        # Whatever starts it: rules and schedules targeting it, each through its own role.
        for trig_name, trig in res.items():
            targets = []
            if trig["Type"] == "AWS::Events::Rule":
                targets = trig["Properties"].get("Targets", [])
            elif trig["Type"] == "AWS::Scheduler::Schedule":
                targets = [trig["Properties"]["Target"]]
            for t in targets:
                if r.resolve(t["Arn"]) != machine_arn:
                    continue
                role = t.get("RoleArn", {}).get("Fn::GetAtt", [None])[0]
                if role is None or not allows(role_statements(template, r, role), "states:StartExecution",
                                              machine_arn):
                    problems.append(f"{trig_name} targets {name} but its role may not start it")
                else:
                    print(f"  {trig_name}: may start {name}")

    # Lambda targets of rules need a resource policy for events.amazonaws.com.
    for trig_name, trig in res.items():
        if trig["Type"] != "AWS::Events::Rule":
            continue
        for t in trig["Properties"].get("Targets", []):
            arn = r.resolve(t["Arn"])
            if ":lambda:" not in str(arn):
                continue
            fn = arn.rsplit(":", 1)[1]
            ok = any(p["Type"] == "AWS::Lambda::Permission"
                     and r.resolve(p["Properties"]["FunctionName"]) in (fn, arn)
                     and p["Properties"]["Principal"] == "events.amazonaws.com"
                     and r.resolve(p["Properties"].get("SourceArn")) == r.get_att(trig_name, "Arn")
                     for p in res.values())
            if not ok:
                problems.append(f"{trig_name} targets {fn} without a permission for events.amazonaws.com")
            else:
                print(f"  {trig_name}: may invoke {fn}")

    problems += lease_problems(template, r)
    problems += evidence_problems(template, r, fns)
    problems += object_lock_problems(template, r, fns)

    for p in problems:
        print(f"IAM: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print("iam: ok")


def lease_problems(template, r):
    """The lease function asks Step Functions whether the execution holding a list's lease has ended: it needs
    states:DescribeExecution on the executions of the dncflow state machine (DncFlowStateMachine), and nothing of any
    other state machine."""
    res = template["Resources"]
    st = role_statements(template, r, function_role(template, "LeaseFunction"))
    problems = []
    for name, sm in res.items():
        if sm["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        machine = r.ref(name).rsplit(":", 1)[1]
        execution = f"arn:aws:states:us-east-1:123456789012:execution:{machine}:nightly-1"
        granted = allows(st, "states:DescribeExecution", execution)
        if name == "DncFlowStateMachine" and not granted:
            problems.append(f"LeaseFunction may not describe the executions of {name} ({execution}): a lease held by "
                            f"an ended execution would wait for its expiry")
        if name != "DncFlowStateMachine" and granted:
            problems.append(f"LeaseFunction may describe the executions of {name}, which holds no lease")
    if "DncFlowStateMachine" not in res:
        problems.append("no DncFlowStateMachine in the template")
    else:
        print("  lease: may describe the dncflow state machine's executions, no other's")
    return problems


# Evidence kept four years (TCPA claims), never deleted: the keys the bucket policy must protect from deletes.
EVIDENCE_KEYS = ["incoming/list/file.csv", "audit/2026-12-06/120000.000-r.json", "runs/r/manifest.json",
                 "runs/r/report.json", "runs/r/report.md", "runs/r/report.html", "runs/r/dead-letters.jsonl",
                 "runs/r/rejects.jsonl", "status/l/latest.json", "status/l/received.txt", "status/l/operator.jsonl"]
FOUR_YEARS_DAYS = 1461


def evidence_problems(template, r, fns):
    """The bucket keeps evidence: deletes of it denied to everyone, versioning and lifecycle changes denied, old
    versions kept four years; the check role creates audit records only (If-None-Match: *), nobody else writes
    them."""
    res = template["Resources"]
    problems = []
    bucket_arn = "arn:aws:s3:::dncflow-bucket"
    policy = [r.resolve(s) for p in res.values() if p["Type"] == "AWS::S3::BucketPolicy"
              for s in as_list(p["Properties"]["PolicyDocument"]["Statement"])]
    denies = [s for s in policy if s.get("Effect") == "Deny" and s.get("Principal") == "*" and "Condition" not in s]
    for key in EVIDENCE_KEYS:
        for action in ("s3:DeleteObject", "s3:DeleteObjectVersion"):
            if not any(any(glob(a.lower(), action.lower()) for a in as_list(s["Action"]))
                       and any(glob(x, f"{bucket_arn}/{key}") for x in as_list(s["Resource"])) for s in denies):
                problems.append(f"the bucket policy does not deny {action} on {key} (evidence)")
    # A lease is released by deleting it: the deny must not reach it.
    if any(any(glob(a.lower(), "s3:deleteobject") for a in as_list(s["Action"]))
           and any(glob(x, f"{bucket_arn}/status/l/lease.json") for x in as_list(s["Resource"])) for s in denies):
        problems.append("the bucket policy denies deleting status/<list>/lease.json: a lease could not be released")
    for action in ("s3:PutBucketVersioning", "s3:PutLifecycleConfiguration"):
        if not any(any(glob(a.lower(), action.lower()) for a in as_list(s["Action"]))
                   and bucket_arn in as_list(s["Resource"]) for s in denies):
            problems.append(f"the bucket policy does not deny {action}")
    buckets = [b for b in res.values() if b["Type"] == "AWS::S3::Bucket"]
    for b in buckets:
        rules = b["Properties"].get("LifecycleConfiguration", {}).get("Rules", [])
        for rule in rules:
            days = rule.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays")
            if days is not None and days < FOUR_YEARS_DAYS:
                problems.append(f"lifecycle rule {rule.get('Id')} expires old versions after {days} days "
                                f"(evidence needs {FOUR_YEARS_DAYS})")
    for fn, binary in fns.items():
        st = role_statements(template, r, function_role(template, fn))
        writes = [s for s in st if s.get("Effect") == "Allow"
                  and any(glob(a.lower(), "s3:putobject") for a in as_list(s.get("Action", [])))
                  and any(glob(x, f"{bucket_arn}/audit/x.json") for x in as_list(s.get("Resource", [])))]
        for s in writes:
            if binary != "check":
                problems.append(f"{binary} may write audit records")
            elif s.get("Condition") != {"StringEquals": {"s3:if-none-match": "*"}}:
                problems.append("check may replace audit records (its PutObject on audit/* lacks "
                                "s3:if-none-match: *)")
    print(f"  evidence: deletes of {len(EVIDENCE_KEYS)} kinds of keys denied, versions kept "
          f"{FOUR_YEARS_DAYS} days, audit records created only")
    return problems


# The evidence each function writes (run::is_evidence in shared/src/run/keys.rs is the code's list): each version is
# written with an S3 Object Lock retention, which needs s3:PutObjectRetention on the key.
EVIDENCE_WRITERS = {
    "normalize": ["runs/r/manifest.json", "runs/r/rejects.jsonl", "status/l/received.txt"],
    "reconcile": ["runs/r/report.json", "runs/r/report.md", "runs/r/report.html", "runs/r/dead-letters.jsonl",
                  "status/l/latest.json", "status/l/received.txt"],
    "record-failure": ["runs/r/report.json", "runs/r/report.md", "runs/r/report.html", "runs/r/dead-letters.jsonl",
                       "status/l/latest.json", "status/l/received.txt"],
    "lease": ["status/l/latest.json"],
    "check": ["audit/2026-12-06/120000.000-r.json"],
}


def object_lock_problems(template, r, fns):
    """Evidence is immutable: the bucket has Object Lock on (versioning with it) and no default retention (it would
    lock the shards and the registry's indexes too); every function is told to lock evidence for at least four years
    in GOVERNANCE or COMPLIANCE mode; each writer may set the retention on what it writes; nobody may bypass a
    GOVERNANCE lock or change the bucket's lock configuration."""
    res = template["Resources"]
    problems = []
    bucket_arn = "arn:aws:s3:::dncflow-bucket"
    for name, b in res.items():
        if b["Type"] != "AWS::S3::Bucket" or "VersioningConfiguration" not in b["Properties"]:
            continue
        props = b["Properties"]
        if props.get("ObjectLockEnabled") is not True:
            problems.append(f"{name}: ObjectLockEnabled is not true (evidence cannot be locked)")
        config = props.get("ObjectLockConfiguration", {})
        if config.get("ObjectLockEnabled") != "Enabled":
            problems.append(f"{name}: ObjectLockConfiguration.ObjectLockEnabled is not Enabled")
        if "Rule" in config:
            problems.append(f"{name}: a default retention would lock every object (shards, leases, registry indexes)")
        if props["VersioningConfiguration"].get("Status") != "Enabled":
            problems.append(f"{name}: Object Lock needs versioning")
    policy = [r.resolve(s) for p in res.values() if p["Type"] == "AWS::S3::BucketPolicy"
              for s in as_list(p["Properties"]["PolicyDocument"]["Statement"])]
    denies = [s for s in policy if s.get("Effect") == "Deny" and s.get("Principal") == "*" and "Condition" not in s]
    for action, resource in (("s3:BypassGovernanceRetention", f"{bucket_arn}/audit/x.json"),
                             ("s3:PutBucketObjectLockConfiguration", bucket_arn)):
        if not any(any(glob(a.lower(), action.lower()) for a in as_list(s["Action"]))
                   and any(glob(x, resource) for x in as_list(s["Resource"])) for s in denies):
            problems.append(f"the bucket policy does not deny {action}")
    for fn, binary in fns.items():
        env = r.resolve(res[fn]["Properties"].get("Environment", {}).get("Variables", {}))
        mode = env.get("DNCFLOW_EVIDENCE_LOCK_MODE")
        days = env.get("DNCFLOW_EVIDENCE_LOCK_DAYS", "0")
        if mode not in ("GOVERNANCE", "COMPLIANCE"):
            problems.append(f"{binary}: DNCFLOW_EVIDENCE_LOCK_MODE is {mode!r}, not GOVERNANCE or COMPLIANCE")
        if not str(days).isdigit() or int(days) < FOUR_YEARS_DAYS:
            problems.append(f"{binary}: DNCFLOW_EVIDENCE_LOCK_DAYS is {days!r} (evidence needs {FOUR_YEARS_DAYS})")
        st = role_statements(template, r, function_role(template, fn))
        for key in EVIDENCE_WRITERS.get(binary, []):
            if not allows(st, "s3:PutObjectRetention", f"{bucket_arn}/{key}"):
                problems.append(f"{binary} writes {key} (evidence) but may not lock it (s3:PutObjectRetention)")
        if allows(st, "s3:BypassGovernanceRetention", f"{bucket_arn}/audit/x.json"):
            problems.append(f"{binary} may bypass a GOVERNANCE lock")
    print(f"  object lock: on, no default retention, {len(EVIDENCE_WRITERS)} writers lock what they write, "
          f"nobody bypasses it")
    return problems


def function_policies(args):
    template = transform(args.template)
    r = Resolver(template, args.bucket, args.secret_arn, args.account, args.region)
    drop = {}
    for d in args.drop or []:
        fn, index = d.split(":")
        drop.setdefault(fn, set()).add(int(index))
    out = {}
    for fn, binary in functions(template).items():
        st = role_statements(template, r, function_role(template, fn))
        kept = []
        for i, s in enumerate(st):
            if i in drop.get(binary, set()):
                continue
            actions = as_list(s.get("Action", []))
            if all(a.split(":")[0] in ("secretsmanager", "events", "states") for a in actions):
                s = dict(s, Resource="*")
            # moto knows no s3:if-none-match context key (it would deny every such write): the condition is
            # checked statically by `check`, and the code writes audit records with If-None-Match either way.
            if "s3:if-none-match" in json.dumps(s.get("Condition", {})):
                s = {k: v for k, v in s.items() if k != "Condition"}
            kept.append(s)
        out[binary] = {"Version": "2012-10-17", "Statement": kept}
    return out


def policies(args):
    json.dump(function_policies(args), sys.stdout, indent=1)
    print()


def moto_world(args):
    import boto3

    def client(service, keys):
        return boto3.client(service, endpoint_url=args.endpoint, region_name=args.region,
                            aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"])

    def user(iam, name, policy):
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}

    # The three unauthenticated requests moto allows: the admin user, its policy, its key.
    anonymous = {"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": "setup"}
    admin = user(client("iam", anonymous), "dncflow-test-admin",
                 {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    client("s3", admin).create_bucket(Bucket=args.bucket)
    arn = client("secretsmanager", admin).create_secret(Name=args.secret_name,
                                                         SecretString=args.secret_string)["ARN"]
    args.secret_arn = arn
    if args.audit_key_secret:
        client("secretsmanager", admin).create_secret(Name=args.audit_key_secret,
                                                      SecretString=os.urandom(32).hex())
    iam = client("iam", admin)
    keys = {binary: user(iam, f"dncflow-{binary}", policy) for binary, policy in function_policies(args).items()}
    json.dump({"admin": admin, "secretArn": arn, "functions": keys}, sys.stdout)
    print()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check")
    c.add_argument("template")
    q = sub.add_parser("policies")
    q.add_argument("template")
    q.add_argument("--bucket", required=True)
    q.add_argument("--secret-arn", required=True)
    q.add_argument("--account", default="123456789012")
    q.add_argument("--region", default="us-east-1")
    q.add_argument("--drop", action="append")
    m = sub.add_parser("moto-world")
    m.add_argument("template")
    m.add_argument("--endpoint", required=True)
    m.add_argument("--bucket", required=True)
    m.add_argument("--secret-name", required=True)
    m.add_argument("--secret-string", required=True)
    m.add_argument("--account", default="123456789012")
    m.add_argument("--region", default="us-east-1")
    m.add_argument("--drop", action="append")
    m.add_argument("--audit-key-secret", help="also create this secret holding a random audit key")
    args = p.parse_args()
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    if args.command == "check":
        check(args.template)
    elif args.command == "policies":
        policies(args)
    else:
        moto_world(args)


if __name__ == "__main__":
    main()
