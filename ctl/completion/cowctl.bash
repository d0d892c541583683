# bash completion for cowctl: verbs, their flags, and pool / worker names from the running
# daemon (asked with `cowctl status --json`; nothing is completed when it is unreachable).
_cowctl_targets() {
    cowctl "${socket_args[@]}" status --json 2>/dev/null |
        grep -o '"name":"[^"]*"' | cut -d'"' -f4
}

_cowctl() {
    local cur prev verb i
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    local verbs="status start stop restart scale signal reload tree mem logs health reopen shutdown version"
    local -a socket_args=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            -s|--socket) socket_args=(--socket "${COMP_WORDS[i+1]}"); ((i++)) ;;
            -*) ;;
            *) [[ -z $verb ]] && verb=${COMP_WORDS[i]} ;;
        esac
    done
    if [[ $prev == -s || $prev == --socket ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
        return
    fi
    if [[ -z $verb ]]; then
        COMPREPLY=($(compgen -W "$verbs --socket --json --timeout --help" -- "$cur"))
        return
    fi
    local flags="--json"
    case $verb in
        start|stop) flags+=" --no-wait" ;;
        restart) flags+=" --no-wait --batch --all-at-once" ;;
        mem) flags+=" --sort --maps --deep" ;;
        logs) flags+=" -n --lines -f --follow --stderr --stdout --since" ;;
        tree) flags+=" -a --args" ;;
        signal) flags+=" --tree" ;;
        reload) flags+=" --dry-run" ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
        return
    fi
    case $verb in
        signal)
            if [[ $prev == signal ]]; then
                COMPREPLY=($(compgen -W "HUP INT QUIT KILL USR1 USR2 TERM CONT STOP WINCH" -- "$cur"))
                return
            fi ;;
        reload|health|reopen|shutdown|version) return ;;
    esac
    [[ $prev == --sort ]] && { COMPREPLY=($(compgen -W "pss uss rss" -- "$cur")); return; }
    COMPREPLY=($(compgen -W "all $(_cowctl_targets)" -- "$cur"))
}
complete -F _cowctl cowctl
