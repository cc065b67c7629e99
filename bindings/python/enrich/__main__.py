"""python3 -m enrich COMMAND ...: the AWS-facing tools of the package.

    consume      Kinesis stream -> libenrich -> Firehose-like delivery -> S3 or a tree
    local-pipe   a local stand-in for EventBridge Pipes / a Lambda Kinesis event
                 source: polls a stream, invokes a handler, delivers into S3
    sync         copy a DynamoDB table (or its export to S3) into a store table
    follow       apply the table's DynamoDB Stream to the store, exactly once
    stats        the follower's applied counts and lag
    publish      publish a compact snapshot and its manifest to S3 or a folder
    refresh      keep a local snapshot folder at the newest published snapshot

`python3 -m enrich COMMAND --help` for a command's options. The last five
are also `python3 -m enrich.aws COMMAND` (docs/freshness.md).
"""

import sys

# Commands whose module parses its own argv: main(argv, prog).
COMMANDS = {
    "consume": "enrich.consume",
    "local-pipe": "enrich.local_pipe",
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    from .aws import _COMMANDS as FRESHNESS, main as freshness_main
    if argv and argv[0] in FRESHNESS:
        return freshness_main(argv, prog="python3 -m enrich")
    if not argv or argv[0] not in COMMANDS:
        sys.stderr.write(__doc__.lstrip())
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    import importlib
    module = importlib.import_module(COMMANDS[argv[0]])
    return module.main(argv[1:], prog=f"python3 -m enrich {argv[0]}")


if __name__ == "__main__":
    sys.exit(main())
