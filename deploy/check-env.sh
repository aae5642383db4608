#!/bin/sh
# llmwatch's entry check: refuse to start the stack with the placeholder values of .env.example.
#
#   check-env.sh NAME...    (each NAME an environment variable that must hold a real value)
#
# docker-compose.yml runs it as the one-shot `env-check` service, which every other service waits for
# (depends_on: condition: service_completed_successfully). Compose's own `${VAR:?}` only refuses an
# unset or empty variable: it cannot tell a CHANGE-ME placeholder, a publicly known password, from a
# real value. Exits 1 naming every variable that is unset, empty or still contains CHANGE-ME; exits 0
# otherwise; exits 2 when called without names. Never prints a value.
set -u

PLACEHOLDER="CHANGE-ME"

if [ "$#" -eq 0 ]; then
    echo "usage: check-env.sh NAME... (the environment variables to check)" >&2
    exit 2
fi

status=0
for name in "$@"; do
    value=$(printenv "$name") || value=""
    case "$value" in
        "")
            echo "llmwatch: $name is not set: set it in .env (see .env.example)" >&2
            status=1
            ;;
        *"$PLACEHOLDER"*)
            echo "llmwatch: $name still holds the $PLACEHOLDER placeholder of .env.example:" \
                "set a real value in .env" >&2
            status=1
            ;;
    esac
done
if [ "$status" -eq 0 ]; then
    echo "llmwatch: environment check passed ($# variables)"
fi
exit "$status"
