#!/usr/bin/env python3
"""Nothing asynchronous fails in silence: static checks of the SAM-transformed template (beside `iam.py check`).

  resilience.py check TEMPLATE

  - every asynchronously invoked function (the target of an EventBridge rule, or invoked by S3, SNS or EventBridge
    through a resource policy) has an on-failure destination that is an SQS queue, and an alarm on its Errors;
  - every EventBridge rule target has a dead-letter queue (an event EventBridge cannot deliver is kept);
  - every EventBridge Scheduler schedule (AWS::Scheduler::Schedule) target has a dead-letter queue its execution
    role may sqs:SendMessage to, and a RetryPolicy (a start the scheduler cannot make is kept);
  - every queue used as a destination or dead-letter queue has an alarm on its visible messages;
  - every state machine has a TimeoutSeconds, logging to CloudWatch Logs, an alarm on its failed executions, a Catch
    on every top-level Task and Map state, and on every Task that invokes a Lambda function a Retry matching Lambda's
    service errors (Lambda.ServiceException, or States.ALL);
  - the FTC download workflow's watch (shared/src/registry/watch.rs WATCH_METRICS, published as EMF with the
    dimension Registry) has an alarm on each of its metrics for the national registry: two days without a change
    list, 7 days before staleness, 30 days before the SAN's renewal, area codes paid for and not held, a refused
    login; and an execution of it that times out or is aborted is recorded (a status-change rule names it).

Exits non-zero naming each thing missing. scripts/check-infra.sh runs it, and `resilience.py selftest TEMPLATE`,
which proves the check fails on the template with each of these removed in turn.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import iam  # noqa: E402  (the transform and the intrinsics resolver are iam.py's)

ASYNC_PRINCIPALS = {"events.amazonaws.com", "s3.amazonaws.com", "sns.amazonaws.com"}
LAMBDA_SERVICE_ERRORS = {"Lambda.ServiceException", "States.ALL", "States.TaskFailed"}
# The download workflow's watch, as shared/src/registry/watch.rs publishes it (a Rust test checks the two agree).
WATCH_METRICS = ["RegistryDaysToStale", "RegistryDaysNotContinuous", "FtcDaysToRenewal", "FtcSubscribedNotCovered",
                 "FtcLoginRefused"]
DOWNLOAD_MACHINE = "RegistryDownloadStateMachine"


def alarms(res):
    """(namespace, metric, {dimension name: raw value}) of every alarm, metric math alarms' metrics included."""
    out = []
    for r in res.values():
        if r["Type"] != "AWS::CloudWatch::Alarm":
            continue
        p = r["Properties"]
        if "MetricName" in p:
            dims = {d["Name"]: d["Value"] for d in p.get("Dimensions", [])}
            out.append((p.get("Namespace"), p["MetricName"], dims))
        for m in p.get("Metrics", []):
            metric = m.get("MetricStat", {}).get("Metric")
            if metric:
                dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
                out.append((metric.get("Namespace"), metric.get("MetricName"), dims))
    return out


def has_alarm(all_alarms, namespace, metric, dimension, value):
    return any(ns == namespace and m == metric and dims.get(dimension) == value for ns, m, dims in all_alarms)


def queue_of(res, arn_node):
    """The logical id of the SQS queue an ARN node names (`Fn::GetAtt [Q, Arn]`), else None."""
    if isinstance(arn_node, dict) and "Fn::GetAtt" in arn_node:
        target = arn_node["Fn::GetAtt"]
        name, attr = target if isinstance(target, list) else target.split(".", 1)
        if attr == "Arn" and res.get(name, {}).get("Type") == "AWS::SQS::Queue":
            return name
    return None


def function_of(res, node):
    """The logical id of the function a FunctionName / target ARN node names, else None."""
    if isinstance(node, dict):
        if "Ref" in node and res.get(node["Ref"], {}).get("Type") == "AWS::Lambda::Function":
            return node["Ref"]
        if "Fn::GetAtt" in node:
            target = node["Fn::GetAtt"]
            name = target[0] if isinstance(target, list) else target.split(".", 1)[0]
            if res.get(name, {}).get("Type") == "AWS::Lambda::Function":
                return name
    return None


def role_sends_to(res, role_arn, queue):
    """Whether the role `role_arn` names (`Fn::GetAtt [Role, Arn]`) allows sqs:SendMessage on `queue`."""
    if not (isinstance(role_arn, dict) and "Fn::GetAtt" in role_arn):
        return False
    role = res.get(role_arn["Fn::GetAtt"][0], {})
    for policy in role.get("Properties", {}).get("Policies", []):
        for st in policy.get("PolicyDocument", {}).get("Statement", []):
            actions = st.get("Action", [])
            actions = [actions] if isinstance(actions, str) else actions
            resources = st.get("Resource", [])
            resources = resources if isinstance(resources, list) else [resources]
            if st.get("Effect") == "Allow" and any(a in ("sqs:SendMessage", "sqs:*") for a in actions) and any(
                    queue_of(res, r) == queue for r in resources):
                return True
    return False


def machine_of(res, node):
    if isinstance(node, dict) and "Ref" in node:
        if res.get(node["Ref"], {}).get("Type") == "AWS::StepFunctions::StateMachine":
            return node["Ref"]
    return None


def tasks(states, top=True):
    """(name, state, top-level) of every state, Map and Parallel branches included."""
    for name, s in states.items():
        yield name, s, top
        for key in ("ItemProcessor", "Iterator"):
            if key in s:
                yield from tasks(s[key]["States"], False)
        for branch in s.get("Branches", []):
            yield from tasks(branch["States"], False)


def problems_of(template, say=lambda _: None):
    """What the transformed template lacks, one sentence each."""
    res = template["Resources"]
    r = iam.Resolver(template, "dncflow-bucket", "arn:aws:secretsmanager:us-east-1:123456789012:secret:x",
                     "123456789012", "us-east-1")
    all_alarms = alarms(res)
    problems = []
    queues = set()

    # Which functions are invoked asynchronously.
    async_fns = {}
    for name, x in res.items():
        if x["Type"] == "AWS::Events::Rule":
            for t in x["Properties"].get("Targets", []):
                fn = function_of(res, t["Arn"])
                if fn:
                    async_fns.setdefault(fn, f"the target of {name}")
                dlq = queue_of(res, t.get("DeadLetterConfig", {}).get("Arn"))
                if dlq is None:
                    problems.append(f"{name}: target {t.get('Id')} has no dead-letter queue (DeadLetterConfig): an "
                                    f"event EventBridge cannot deliver would be dropped")
                else:
                    queues.add(dlq)
        if x["Type"] == "AWS::Scheduler::Schedule":
            # EventBridge Scheduler delivers through its execution role: the queue must be named on the target and
            # the role must be allowed to send to it, or a start it could not make is dropped.
            t = x["Properties"].get("Target", {})
            dlq = queue_of(res, t.get("DeadLetterConfig", {}).get("Arn"))
            if dlq is None:
                problems.append(f"{name}: schedule target has no dead-letter queue (DeadLetterConfig): a start the "
                                f"scheduler cannot make would be dropped")
            else:
                queues.add(dlq)
                if not role_sends_to(res, t.get("RoleArn"), dlq):
                    problems.append(f"{name}: the schedule's role may not sqs:SendMessage to {dlq}: its dead "
                                    f"letters could not be delivered")
            if "RetryPolicy" not in t:
                problems.append(f"{name}: schedule target has no RetryPolicy")
        if x["Type"] == "AWS::Lambda::Permission" and x["Properties"].get("Principal") in ASYNC_PRINCIPALS:
            fn = function_of(res, x["Properties"]["FunctionName"])
            if fn:
                async_fns.setdefault(fn, f"invoked by {x['Properties']['Principal']}")

    configs = {}
    for name, x in res.items():
        if x["Type"] == "AWS::Lambda::EventInvokeConfig":
            fn = function_of(res, x["Properties"]["FunctionName"])
            if fn:
                configs[fn] = x["Properties"]
    for fn, why in sorted(async_fns.items()):
        dest = configs.get(fn, {}).get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        queue = queue_of(res, dest)
        if queue is None:
            problems.append(f"{fn} ({why}) has no on-failure destination that is an SQS queue: an event it fails "
                            f"after Lambda's retries would be dropped")
        else:
            queues.add(queue)
        if not has_alarm(all_alarms, "AWS/Lambda", "Errors", "FunctionName", {"Ref": fn}):
            problems.append(f"{fn} ({why}) has no alarm on its Errors")
        say(f"  {fn}: asynchronous ({why}), on failure to {queue}")

    for q in sorted(queues):
        if not has_alarm(all_alarms, "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName",
                         {"Fn::GetAtt": [q, "QueueName"]}):
            problems.append(f"queue {q} has no alarm on ApproximateNumberOfMessagesVisible: what lands in it would "
                            f"wait unseen")

    for name, x in res.items():
        if x["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        p = x["Properties"]
        text = r.resolve(p["DefinitionString"])
        for k, v in p.get("DefinitionSubstitutions", {}).items():
            text = text.replace("${" + k + "}", str(r.resolve(v)))
        definition = json.loads(text)
        if not definition.get("TimeoutSeconds"):
            problems.append(f"{name}: no TimeoutSeconds (a stuck execution would run for a year)")
        if not p.get("LoggingConfiguration", {}).get("Destinations"):
            problems.append(f"{name}: no logging (LoggingConfiguration)")
        if not has_alarm(all_alarms, "AWS/States", "ExecutionsFailed", "StateMachineArn", {"Ref": name}):
            problems.append(f"{name}: no alarm on ExecutionsFailed")
        for state_name, s, top in tasks(definition["States"]):
            if top and s["Type"] in ("Task", "Map", "Parallel") and not s.get("Catch"):
                problems.append(f"{name}: state {state_name} has no Catch (its failure would not be recorded)")
            if s["Type"] == "Task" and ":lambda:" in str(s.get("Resource", "")):
                matched = {e for rule in s.get("Retry", []) for e in rule.get("ErrorEquals", [])}
                if not matched & LAMBDA_SERVICE_ERRORS:
                    problems.append(f"{name}: Task {state_name} does not retry Lambda's service errors "
                                    f"(Lambda.ServiceException)")
        say(f"  {name}: timeout {definition.get('TimeoutSeconds')} s, logging, failed-executions alarm")

    if DOWNLOAD_MACHINE in res:
        for metric in WATCH_METRICS:
            if not has_alarm(all_alarms, "dncflow", metric, "Registry", "national"):
                problems.append(f"the FTC download's watch metric {metric} (dimension Registry=national) has no "
                                f"alarm: the subscription would not be watched")
        watched = False
        for name, x in res.items():
            if x["Type"] != "AWS::Events::Rule":
                continue
            pattern = x["Properties"].get("EventPattern", {})
            detail = pattern.get("detail", {})
            if ("TIMED_OUT" in detail.get("status", []) and {"Ref": DOWNLOAD_MACHINE} in
                    detail.get("stateMachineArn", [])):
                watched = True
        if not watched:
            problems.append(f"{DOWNLOAD_MACHINE}: no status-change rule records an execution that TIMED_OUT: its "
                            f"failure would not reach the registry's status")
        say(f"  {DOWNLOAD_MACHINE}: watch alarms on {', '.join(WATCH_METRICS)}; timeouts recorded")
    return problems


def check(template_path):
    problems = problems_of(iam.transform(template_path), print)
    for p in problems:
        print(f"resilience: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print("resilience: ok")


def selftest(template_path):
    """The check fails on the template with each safeguard removed in turn (a check that cannot fail proves nothing)."""
    import copy

    base = iam.transform(template_path)
    assert not problems_of(base), problems_of(base)

    def without(mutate, expect):
        t = copy.deepcopy(base)
        mutate(t["Resources"])
        found = problems_of(t)
        if not any(expect in p for p in found):
            print(f"resilience selftest: removing {expect!r} was not caught: {found}", file=sys.stderr)
            sys.exit(1)
        print(f"  caught: {expect}")

    def drop_type(kind, fn):
        def mutate(res):
            for k in [k for k, v in res.items() if v["Type"] == kind and fn(v)]:
                del res[k]
        return mutate

    def machine(res):
        return next(v for k, v in res.items() if k == "RegistryImportStateMachine")

    def definition_edit(edit):
        def mutate(res):
            p = machine(res)["Properties"]
            text = iam.Resolver(base, "b", "s", "1", "r").resolve(p["DefinitionString"])
            d = json.loads(text)
            edit(d)
            p["DefinitionString"] = json.dumps(d)
        return mutate

    without(drop_type("AWS::Lambda::EventInvokeConfig",
                      lambda v: v["Properties"]["FunctionName"] == {"Ref": "RegistryFunction"}),
            "RegistryFunction (the target of")
    without(drop_type("AWS::CloudWatch::Alarm", lambda v: v["Properties"].get("MetricName") == "Errors"
                      and v["Properties"].get("Namespace") == "AWS/Lambda"),
            "has no alarm on its Errors")
    without(drop_type("AWS::CloudWatch::Alarm",
                      lambda v: v["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"),
            "has no alarm on ApproximateNumberOfMessagesVisible")

    def no_rule_dlq(res):
        for v in res.values():
            if v["Type"] == "AWS::Events::Rule":
                for t in v["Properties"].get("Targets", []):
                    t.pop("DeadLetterConfig", None)
    without(no_rule_dlq, "has no dead-letter queue")

    def schedule_target(res):
        return next(v for v in res.values() if v["Type"] == "AWS::Scheduler::Schedule")["Properties"]["Target"]
    without(lambda res: schedule_target(res).pop("DeadLetterConfig"), "schedule target has no dead-letter queue")
    without(lambda res: schedule_target(res).pop("RetryPolicy"), "schedule target has no RetryPolicy")

    def no_send(res):
        role = res[schedule_target(res)["RoleArn"]["Fn::GetAtt"][0]]["Properties"]
        role["Policies"] = [p for p in role["Policies"] if "sqs:SendMessage" not in json.dumps(p)]
    without(no_send, "the schedule's role may not sqs:SendMessage")
    without(definition_edit(lambda d: d.pop("TimeoutSeconds")), "RegistryImportStateMachine: no TimeoutSeconds")
    without(lambda res: machine(res)["Properties"].pop("LoggingConfiguration"),
            "RegistryImportStateMachine: no logging")
    without(definition_edit(lambda d: d["States"]["Assemble"].pop("Catch")), "state Assemble has no Catch")
    without(definition_edit(lambda d: d["States"]["Assemble"].__setitem__("Retry", [])),
            "Task Assemble does not retry")
    without(drop_type("AWS::CloudWatch::Alarm", lambda v: "Metrics" in v["Properties"]),
            "RegistryImportStateMachine: no alarm on ExecutionsFailed")
    for metric in WATCH_METRICS:
        without(drop_type("AWS::CloudWatch::Alarm", lambda v, m=metric: v["Properties"].get("MetricName") == m),
                f"watch metric {metric} ")

    def unwatched_timeouts(res):
        for v in res.values():
            if v["Type"] == "AWS::Events::Rule":
                arns = v["Properties"].get("EventPattern", {}).get("detail", {}).get("stateMachineArn", [])
                if {"Ref": DOWNLOAD_MACHINE} in arns:
                    arns.remove({"Ref": DOWNLOAD_MACHINE})
    without(unwatched_timeouts, "no status-change rule records an execution that TIMED_OUT")
    print("resilience selftest: ok")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("check", "selftest"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    if sys.argv[1] == "check":
        check(sys.argv[2])
    else:
        selftest(sys.argv[2])


if __name__ == "__main__":
    main()
