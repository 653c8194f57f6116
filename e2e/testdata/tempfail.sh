#!/bin/sh
# tempfail.sh GATE RUNS COMMAND [ARG...]: an exec next hop for
# TestExecMlmmj. Each run appends a line to the file RUNS. While the
# file GATE exists it exits 75 (EX_TEMPFAIL: try again later) without
# reading the message; once GATE is gone it runs COMMAND, which gets the
# message on its standard input.
gate=$1 runs=$2
shift 2
echo run >>"$runs"
if [ -e "$gate" ]; then
	echo "tempfail.sh: $gate is there: try again later" >&2
	exit 75
fi
exec "$@"
