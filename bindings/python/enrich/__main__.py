"""python3 -m enrich COMMAND ...: the AWS-facing tools of the package.

    consume      Kinesis stream -> libenrich -> Firehose-like delivery -> S3 or a tree
    local-pipe   a local stand-in for EventBridge Pipes / a Lambda Kinesis event
                 source: polls a stream, invokes a handler, delivers into S3
    ddb-sync     a DynamoDB table scanned into a reference store
"""

import sys

COMMANDS = {
    "consume": "enrich.consume",
    "local-pipe": "enrich.local_pipe",
    "ddb-sync": "enrich.ddb_sync",
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        sys.stderr.write(__doc__.lstrip())
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    import importlib
    module = importlib.import_module(COMMANDS[argv[0]])
    return module.main(argv[1:], prog=f"python3 -m enrich {argv[0]}")


if __name__ == "__main__":
    sys.exit(main())
