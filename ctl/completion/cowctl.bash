# bash completion for cowctl: verbs, their flags, and pool / worker names from the running
# daemon (asked with `cowctl status --json`; nothing is completed when it is unreachable).
_cowctl_targets() {
    cowctl "${socket_args[@]}" --timeout 2 status --json 2>/dev/null |
        grep -o '"name":"[^"]*"' | cut -d'"' -f4
}

_cowctl() {
    local cur prev verb i nargs=0
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    # bash splits "--timeout=5" into "--timeout" "=" "5".
    [[ $prev == = && $COMP_CWORD -ge 2 ]] && prev=${COMP_WORDS[COMP_CWORD-2]}
    [[ $cur == = ]] && cur=
    local verbs="status start stop restart scale signal reload tree mem top logs history events health reopen shutdown upgrade version"
    # Options that take a value: the word after them is that value, never a verb or a target.
    local valued=" -s --socket --timeout --batch -n --lines --since --sort --maps --binary "
    local -a socket_args=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        local w=${COMP_WORDS[i]}
        if [[ $valued == *" $w "* ]]; then
            [[ ${COMP_WORDS[i+1]} == = ]] && ((i++))
            ((i++))
            [[ $w == -s || $w == --socket ]] && ((i < COMP_CWORD)) &&
                socket_args=(--socket "${COMP_WORDS[i]}")
            continue
        fi
        case $w in
            -*) ;;
            *) if [[ -z $verb ]]; then verb=$w; else ((nargs++)); fi ;;
        esac
    done
    case $prev in
        -s|--socket|--binary) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --timeout|--batch|-n|--lines|--since) COMPREPLY=(); return ;;
        --sort) COMPREPLY=($(compgen -W "pss uss rss" -- "$cur")); return ;;
        --maps) COMPREPLY=($(compgen -W "$(_cowctl_targets)" -- "$cur")); return ;;
    esac
    if [[ -z $verb ]]; then
        COMPREPLY=($(compgen -W "$verbs --socket --json --timeout --help" -- "$cur"))
        return
    fi
    local flags="--json --timeout --socket --help"
    case $verb in
        start|stop) flags+=" --no-wait" ;;
        restart) flags+=" --no-wait --batch --all-at-once --progress" ;;
        mem) flags+=" --sort --maps --deep --history --since --points" ;;
        top) flags+=" --interval --once --pool" ;;
        logs) flags+=" -n --lines -f --follow --stderr --stdout --since" ;;
        tree) flags+=" -a --args" ;;
        history) flags+=" -n --lines" ;;
        events) flags+=" -f --follow --since --pool" ;;
        signal) flags+=" --tree" ;;
        reload) flags+=" --dry-run --progress" ;;
        upgrade) flags+=" --binary" ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
        return
    fi
    case $verb in
        signal)
            if ((nargs == 0)); then
                COMPREPLY=($(compgen -W "HUP INT QUIT KILL USR1 USR2 TERM CONT STOP WINCH" -- "$cur"))
                return
            fi
            ((nargs == 1)) || return ;;
        scale) ((nargs == 0)) || return ;;
        reload|health|reopen|shutdown|upgrade|version) return ;;
        *) ((nargs == 0)) || return ;;
    esac
    COMPREPLY=($(compgen -W "all $(_cowctl_targets)" -- "$cur"))
}
complete -F _cowctl cowctl
