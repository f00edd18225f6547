#!/usr/bin/env bash
# test_completion.sh - the bash completion of cancelqctl (completion/cancelqctl):
# what <TAB> offers for commands, subcommands, options and option values
# (provider names read from the -c config, statuses, actions, parameters),
# with bash-completion loaded as on a Debian host and without it; and that
# its option tables match what `cancelqctl CMD --help` says, so that the
# completion cannot drift from the program.
source "$(dirname "$0")/lib.sh"

COMPLETION=$ROOT/completion/cancelqctl
BASH_COMPLETION=/usr/share/bash-completion/bash_completion
CTL=$BIN/cancelqctl

# A config with two instances of one adapter and one with an inline comment.
cat > "$T/cq.conf" <<'EOF'
[redis]
host = 127.0.0.1

[provider billing-eu]
adapter = activeplatform ; the EU reseller account
base_url = https://ap.example
token_file = ap.token

[provider billing_us]
adapter=activeplatform
base_url = https://ap.example
token_file = ap.token

[provider keliweb]
base_url = https://keliweb.example
token_file = keliweb.token

[worker]
id = w1
EOF

# comp LINE: the candidates <TAB> offers at the end of LINE, sorted, on one
# line.  COMP_WORDS is split as bash splits it (blanks, and "=" as a word
# of its own, as COMP_WORDBREAKS has it).
comp() {
    local line=$1
    local -a ws=()
    read -r -a ws <<<"${line//=/ = }"
    [[ $line == *" " || $line == *"=" ]] && ws+=("")
    # "--x=" ends with an empty word after "=": bash gives "=" as the current word
    if [[ $line == *"=" ]]; then unset 'ws[${#ws[@]}-1]'; fi
    COMP_WORDS=("${ws[@]}")
    COMP_CWORD=$((${#ws[@]} - 1))
    COMP_LINE=$line
    COMP_POINT=${#line}
    COMPREPLY=()
    set +u
    _cancelqctl cancelqctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
    set -u
    printf "%s\n" "${COMPREPLY[@]}" | sed "/^$/d" | sort | tr '\n' ' ' | sed 's/ $//'
}

run_cases() {
    local C="cancelqctl -c $T/cq.conf"
    check_eq "commands" \
        "check dlq enqueue help provider results stats top workers" "$(comp 'cancelqctl ')"
    check_eq "commands by prefix" "stats" "$(comp 'cancelqctl st')"
    check_eq "commands after -c FILE" "dlq" "$(comp "$C dl")"
    check_eq "global options" "--config --help --json --version" "$(comp 'cancelqctl --')"
    check_eq "dlq subcommands" "drop list purge requeue show" "$(comp "$C dlq ")"
    check_eq "results subcommands" "get tail" "$(comp 'cancelqctl results ')"
    check_eq "provider subcommands" "list pause resume" "$(comp 'cancelqctl provider ')"
    check_eq "dlq list options" \
        "--action --config --error --help --job --json --limit --malformed --provider --since --status" \
        "$(comp "$C dlq list --")"
    check_eq "dlq requeue options" \
        "--action --all --config --dry-run --error --help --job --json --limit --malformed --provider --rate --redo --since --status" \
        "$(comp "$C dlq requeue --")"
    check_eq "dlq purge options" "--config --help --yes" "$(comp 'cancelqctl dlq purge --')"
    check_eq "results tail options, short ones too" "--config --count --follow --help --json -c -f -h -n" "$(comp 'cancelqctl results tail -')"
    check_eq "enqueue options" \
        "--action --config --dry-run --file --help --id --json --key --param --provider" \
        "$(comp 'cancelqctl enqueue --')"
    check_eq "stats options" "--config --help --json" "$(comp 'cancelqctl stats --')"
    check_eq "--status values" "conflict exhausted expired failed invalid" \
        "$(comp "$C dlq list --status ")"
    check_eq "--status by prefix" "exhausted expired" "$(comp "$C dlq list --status ex")"
    check_eq "--provider: the config's instances" "billing-eu billing_us keliweb" \
        "$(comp "$C dlq list --provider ")"
    check_eq "--provider=PREFIX" "billing-eu billing_us" "$(comp "$C dlq list --provider=bi")"
    check_eq "--config=FILE is read too" "keliweb" \
        "$(comp "cancelqctl --config=$T/cq.conf dlq drop --provider k")"
    check_eq "-c given after the command is read too" "keliweb" \
        "$(comp "cancelqctl enqueue -c $T/cq.conf --provider k")"
    check_eq "no -c: the default config (unreadable here: nothing)" "" \
        "$(_cancelqctl_default_conf=$T/none.conf comp 'cancelqctl dlq list --provider ')"
    check_eq "--action: all adapters' actions" \
        "cancel_partner cancel_service delete_subscription stop_subscription" \
        "$(comp "$C dlq list --action ")"
    check_eq "--action after --provider: that adapter's actions" \
        "delete_subscription stop_subscription" \
        "$(comp "$C enqueue --provider billing_us --action ")"
    check_eq "--action after --provider (adapter defaults to the name)" "cancel_service" \
        "$(comp "$C enqueue --provider keliweb --action ")"
    check_eq "--param: the action's parameter names" "comment= reason= reseller_id= subscription_id=" \
        "$(comp "$C enqueue --provider billing-eu --action stop_subscription --param ")"
    check_eq "--param by prefix" "serviceid=" \
        "$(comp "$C enqueue --action cancel_service --param s")"
    check_eq "--since examples" "15m 1d 1h 2h 30s 7d" "$(comp 'cancelqctl dlq list --since ')"
    check_eq "free-text values: nothing" "" "$(comp 'cancelqctl dlq list --error ')"
    check_eq "no more subcommands after one" "" "$(comp 'cancelqctl dlq list ')"
    check_eq "provider pause NAME: the config's instances" "keliweb" \
        "$(comp "$C provider pause k")"
    check_eq "help COMMAND" "dlq" "$(comp 'cancelqctl help dl')"
    check_eq "help COMMAND SUB" "requeue" "$(comp 'cancelqctl help dlq re')"
    check "-c FILE completes file names" \
        grep -qx "$T/cq.conf" <<<"$(comp "cancelqctl -c $T/cq." | tr ' ' '\n')"
}

echo "-- with bash-completion loaded"
if [ ! -r "$BASH_COMPLETION" ]; then
    sh "$ROOT/tools/bootstrap.sh" >/dev/null 2>&1
fi
check "bash-completion is installed" test -r "$BASH_COMPLETION"
if [ -r "$BASH_COMPLETION" ]; then
    set +u
    # shellcheck disable=SC1090
    source "$BASH_COMPLETION"
    # shellcheck disable=SC1090
    source "$COMPLETION"
    set -u
    check_eq "registered for cancelqctl" "complete -F _cancelqctl cancelqctl" \
        "$(complete -p cancelqctl 2>&1)"
    have_init() { declare -F _init_completion >/dev/null; }
    check "_init_completion is the one in use" have_init
    run_cases
    check_eq "--param type=: keliweb's values, quoted" 'End\ of\ Billing\ Period Immediate' \
        "$(comp "cancelqctl enqueue --action cancel_service --param type=")"
fi

echo "-- without bash-completion (sourced by hand)"
out=$(env -i HOME="$HOME" PATH="$PATH" T="$T" ROOT="$ROOT" BUILD="$BUILD" bash --norc -c '
    source "$ROOT/completion/cancelqctl"
    declare -F _init_completion >/dev/null && { echo "bash-completion leaked in"; exit 1; }
    '"$(declare -f comp run_cases check check_eq)"'
    PASSED=0 FAILED=0
    run_cases
    echo "counts $PASSED $FAILED"' 2>&1)
echo "$out" | grep -v '^counts '
counts=$(echo "$out" | sed -n 's/^counts //p')
PASSED=$((PASSED + ${counts%% *}))
FAILED=$((FAILED + ${counts##* }))
[ -n "$counts" ] || { FAILED=$((FAILED + 1)); echo "  FAIL the run without bash-completion did not finish"; }

echo "-- the tables match cancelqctl --help"
# opts_of HELP_TEXT: the options a help text names, sorted, one line.
opts_of() { grep -oE -- '(^|[ ,(\[])(-[a-zA-Z]|--[a-z][a-z-]*)\b' | sed 's/^[ ,(\[]//' | sort -u | tr '\n' ' ' | sed 's/ $//'; }
# table_opts KEY: what the completion offers after the command KEY.
table_opts() {
    printf '%s\n' ${_cancelqctl_opts[$1]-} -c --config -h --help | sort -u | tr '\n' ' ' | sed 's/ $//'
}
if [ ! -x "$CTL" ]; then
    check "cancelqctl is built ($CTL)" false
else
    # the commands cancelqctl has now: those its usage lists
    have=$("$CTL" --help | sed -n '/^Commands:/,/^Options:/p' | awk 'NR > 1 && /^  [a-z]/ { print $1 }' | sort -u | tr '\n' ' ')
    for c in $have; do
        check "command $c is completed" grep -qw "$c" <<<"$_cancelqctl_cmds"
    done
    for c in $_cancelqctl_cmds; do
        [ "$c" = help ] && continue
        check "completed command $c exists in cancelqctl" grep -qw "$c" <<<"$have"
    done
    for key in stats workers enqueue "dlq list" "dlq show" "dlq requeue" "dlq drop" "dlq purge" \
               "results tail" "results get" check top "provider list" "provider pause" \
               "provider resume"; do
        # shellcheck disable=SC2086
        help=$("$CTL" $key --help 2>/dev/null)
        if [ $? -ne 0 ] || [ -z "$help" ]; then
            check "cancelqctl $key --help works" false
            continue
        fi
        # --config is accepted by every command (getopt) but its help says "-c FILE"
        check_eq "options of '$key' match its --help" "$(table_opts "$key")" \
            "$( (echo "$help"; echo " --config") | opts_of)"
    done
    help=$("$CTL" --help)
    check_eq "global options match cancelqctl --help" "$(printf '%s\n' -c --config -h --help -V --version --json | sort | tr '\n' ' ' | sed 's/ $//')" \
        "$( (echo "$help" | sed -n '/^Options:/,$p'; echo " --config") | opts_of)"
    check_eq "statuses match the dead-letter statuses of the help" "$_cancelqctl_statuses" \
        "$("$CTL" dlq list --help | sed -n 's/.*dead letter.s status (\(.*\))/\1/p' | tr -d ',')"
fi
check_eq "actions match the adapters' actions in src/" \
    "cancel_partner cancel_service delete_subscription stop_subscription" \
    "$(printf '%s\n' ${_cancelqctl_actions[*]} | sort | tr '\n' ' ' | sed 's/ $//')"
src_actions=$(sed -n 's/^ *\.name = "\([a-z_]*\)",.*/\1/p' "$ROOT"/src/adapter_*.c | grep '_' | sort | tr '\n' ' ' | sed 's/ $//')
check_eq "the adapters in src/ have exactly these actions" \
    "cancel_partner cancel_service delete_subscription stop_subscription" "$src_actions"

finish
