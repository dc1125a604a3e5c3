#!/usr/bin/env python3
"""Transform template.yaml (AWS SAM) into plain CloudFormation with aws-sam-translator, offline, so that cfn-lint
checks the resources SAM generates (functions' runtimes and timeouts, the state machine's role and definition, the
schedule), not only the SAM shorthand. Usage: sam_transform.py TEMPLATE OUT.json"""

import json
import os
import sys

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from samtranslator.model.exceptions import InvalidDocumentException  # noqa: E402
from samtranslator.parser.parser import Parser  # noqa: E402
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader  # noqa: E402
from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402


class OfflinePolicies(ManagedPolicyLoader):
    """No AWS call: the template uses no managed policy by name."""

    def __init__(self):
        pass

    def load(self):
        return {}


def main():
    src, out = sys.argv[1], sys.argv[2]
    with open(src) as f:
        template = yaml_parse(f.read())
    # DefinitionUri is a local file that `sam deploy` uploads; inline it for the offline transform.
    base = os.path.dirname(os.path.abspath(src))
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::StateMachine" and isinstance(props.get("DefinitionUri"), str):
            with open(os.path.join(base, props.pop("DefinitionUri"))) as f:
                props["Definition"] = json.load(f)
        if resource.get("Type") == "AWS::Serverless::Function" and props.get("CodeUri") == ".":
            props["CodeUri"] = "s3://placeholder-bucket/dncflow.zip"
    try:
        result = transform(template, {}, OfflinePolicies(), Parser())
    except InvalidDocumentException as e:
        for cause in e.causes:
            print(f"SAM: {cause.message}", file=sys.stderr)
        sys.exit(1)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
