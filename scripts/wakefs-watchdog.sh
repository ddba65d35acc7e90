#!/bin/sh
# wakefs-watchdog: deallocate this Azure VM when it has been forgotten.
#
# `vmctl watchdog install` puts this script on the VM with
# wakefs-watchdog.conf beside it; wakefs-watchdog.timer runs it as root every
# five minutes. The VM counts as forgotten when all of these hold:
#   - no wakefs mount has touched the heartbeat file (a mount touches it every
#     minute) for WAKEFS_WATCHDOG_MINUTES, and the VM has been up that long;
#   - the 15-minute load average is below WAKEFS_WATCHDOG_LOAD_MAX;
#   - where nvidia-smi exists, every GPU is at 0% and runs no compute process.
# Then it takes a token of the VM's managed identity from IMDS and asks ARM to
# deallocate the VM (the identity needs the right to: see vmctl(1)). Every run
# prints one decision line (the journal keeps it) and records it in the state
# directory (`last`, and the tail of `log`). The token is never printed or
# written anywhere, nor put on a command line.
#
# Settings: WAKEFS_WATCHDOG_* variables in the environment win over the same
# keys in the configuration file (KEY=VALUE lines, read as data, not run;
# default wakefs-watchdog.conf next to this script, or WAKEFS_WATCHDOG_CONF):
#   MINUTES      limit without a heartbeat (default 60)
#   HEARTBEAT    the file mounts touch (default ~/.cache/wakefs/heartbeat)
#   VM_ID        the VM's ARM resource id (default: asked from IMDS)
#   ARM          the ARM endpoint (default https://management.azure.com)
#   IMDS         the instance metadata endpoint (default http://169.254.169.254)
#   API_VERSION  the compute api-version (default 2024-03-01, as vmctl's)
#   STATE        the state directory (default /var/lib/wakefs-watchdog)
#   LOAD_MAX     the 15-minute load average counted as idle (default 0.5)
#   LOADAVG, UPTIME  where to read them (default /proc/loadavg, /proc/uptime)
#   NVIDIA_SMI   the nvidia-smi command (default nvidia-smi; none: no GPU check)
#   DRY_RUN      1: decide and log, never deallocate
# `wakefs-watchdog.sh --status` prints the settings in force, the heartbeat's
# age and the last decision instead.
#
# Exit status: 0 decided (kept, or the deallocation was accepted), 1 the
# deallocation failed (IMDS or ARM said no or did not answer), 2 bad setting.

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
umask 022

say() { printf 'wakefs-watchdog: %s\n' "$*"; }

# ---- settings ----

conf=${WAKEFS_WATCHDOG_CONF:-$(dirname "$0")/wakefs-watchdog.conf}
if [ -r "$conf" ]; then
	while IFS= read -r line || [ -n "$line" ]; do
		case $line in '' | '#'*) continue ;; esac
		key=${line%%=*}
		# shellcheck disable=SC2034 # read by the eval below
		val=${line#*=}
		case $key in
		WAKEFS_WATCHDOG_MINUTES | WAKEFS_WATCHDOG_HEARTBEAT | WAKEFS_WATCHDOG_VM_ID | \
		WAKEFS_WATCHDOG_ARM | WAKEFS_WATCHDOG_IMDS | WAKEFS_WATCHDOG_API_VERSION | \
		WAKEFS_WATCHDOG_STATE | WAKEFS_WATCHDOG_LOAD_MAX | WAKEFS_WATCHDOG_LOADAVG | \
		WAKEFS_WATCHDOG_UPTIME | WAKEFS_WATCHDOG_NVIDIA_SMI | WAKEFS_WATCHDOG_DRY_RUN) ;;
		*)
			say "ignoring unknown setting '$key' in $conf"
			continue
			;;
		esac
		# the environment wins; $key is one of the names above
		eval "[ -n \"\${$key+set}\" ]" && continue
		eval "$key=\$val"
	done <"$conf"
fi

MINUTES=${WAKEFS_WATCHDOG_MINUTES:-60}
HEARTBEAT=${WAKEFS_WATCHDOG_HEARTBEAT:-$HOME/.cache/wakefs/heartbeat}
VM_ID=${WAKEFS_WATCHDOG_VM_ID:-}
ARM=${WAKEFS_WATCHDOG_ARM:-https://management.azure.com}
ARM=${ARM%/}
IMDS=${WAKEFS_WATCHDOG_IMDS:-http://169.254.169.254}
IMDS=${IMDS%/}
API_VERSION=${WAKEFS_WATCHDOG_API_VERSION:-2024-03-01}
STATE=${WAKEFS_WATCHDOG_STATE:-/var/lib/wakefs-watchdog}
LOAD_MAX=${WAKEFS_WATCHDOG_LOAD_MAX:-0.5}
LOADAVG=${WAKEFS_WATCHDOG_LOADAVG:-/proc/loadavg}
UPTIME=${WAKEFS_WATCHDOG_UPTIME:-/proc/uptime}
NVIDIA_SMI=${WAKEFS_WATCHDOG_NVIDIA_SMI:-nvidia-smi}
DRY_RUN=${WAKEFS_WATCHDOG_DRY_RUN:-0}

is_number() { printf '%s' "$1" | grep -Eq '^[0-9]+([.][0-9]+)?$'; }

case $MINUTES in
'' | *[!0-9]* | 0)
	say "bad WAKEFS_WATCHDOG_MINUTES '$MINUTES' (expected a whole number of minutes, at least 1)"
	exit 2
	;;
esac
if ! is_number "$LOAD_MAX"; then
	say "bad WAKEFS_WATCHDOG_LOAD_MAX '$LOAD_MAX' (expected a load average such as 0.5)"
	exit 2
fi

now=$(date +%s)

# Minutes since the last heartbeat, or "" when there is none.
heartbeat_age() {
	hb=$(stat -c %Y "$HEARTBEAT" 2>/dev/null) || return 0
	age=$(((now - hb) / 60))
	[ "$age" -ge 0 ] || age=0
	echo "$age"
}

# ---- status ----

if [ "${1:-}" = "--status" ]; then
	echo "limit: deallocate after $MINUTES min without a heartbeat, with the 15-minute load below $LOAD_MAX and the GPUs idle"
	[ -z "$VM_ID" ] || echo "vm: $VM_ID"
	age=$(heartbeat_age)
	if [ -n "$age" ]; then
		echo "heartbeat: $age min ago ($HEARTBEAT)"
	else
		echo "heartbeat: none yet ($HEARTBEAT)"
	fi
	if [ -s "$STATE/last" ]; then
		echo "last decision: $(cat "$STATE/last")"
	else
		echo "last decision: none yet (the timer runs every 5 minutes)"
	fi
	exit 0
fi

# ---- the decision ----

if ! mkdir -p "$STATE" 2>/dev/null || [ ! -w "$STATE" ]; then
	say "cannot write the state directory '$STATE' (run as root, or set WAKEFS_WATCHDOG_STATE)"
	exit 2
fi

# decide WORD WHY...: print the decision and record it.
decide() {
	line="$(date -u +%Y-%m-%dT%H:%M:%SZ) $*"
	say "$*"
	printf '%s\n' "$line" >"$STATE/last.tmp" && mv -f "$STATE/last.tmp" "$STATE/last"
	printf '%s\n' "$line" >>"$STATE/log"
	if [ "$(wc -l <"$STATE/log")" -gt 2000 ]; then
		tail -n 1000 "$STATE/log" >"$STATE/log.tmp" && mv -f "$STATE/log.tmp" "$STATE/log"
	fi
}

age=$(heartbeat_age)
up=$(cut -d' ' -f1 "$UPTIME" 2>/dev/null)
up=${up%%.*}
case $up in '' | *[!0-9]*) up=0 ;; esac
up=$((up / 60))
if [ -n "$age" ] && [ "$age" -lt "$MINUTES" ]; then
	decide "keep: a mount's heartbeat $age min ago (limit $MINUTES min)"
	exit 0
fi
if [ "$up" -lt "$MINUTES" ]; then
	if [ -n "$age" ]; then
		decide "keep: up $up min, heartbeat $age min ago (limit $MINUTES min)"
	else
		decide "keep: up $up min, no heartbeat yet (limit $MINUTES min)"
	fi
	exit 0
fi
quiet=never
[ -z "$age" ] || quiet="$age min ago"

load=$(cut -d' ' -f3 "$LOADAVG" 2>/dev/null)
if ! is_number "$load"; then
	decide "keep: cannot read the load average from '$LOADAVG'"
	exit 0
fi
if ! awk -v l="$load" -v m="$LOAD_MAX" 'BEGIN { exit !(l + 0 < m + 0) }'; then
	decide "keep: heartbeat $quiet, but the CPU is busy (15-minute load $load, limit $LOAD_MAX)"
	exit 0
fi

gpu="no GPU check (no $NVIDIA_SMI)"
if [ "$NVIDIA_SMI" != none ] && command -v "$NVIDIA_SMI" >/dev/null 2>&1; then
	if util=$(timeout 60 "$NVIDIA_SMI" --query-gpu=utilization.gpu --format=csv,noheader,nounits 2>&1) &&
		apps=$(timeout 60 "$NVIDIA_SMI" --query-compute-apps=pid,process_name --format=csv,noheader 2>&1); then
		# one line per GPU; "[N/A]" (no utilization counter) is not a busy GPU
		busy=$(printf '%s\n' "$util" | tr -d ' %' | grep -E '^[0-9]+$' | grep -v '^0*$' | head -n 1)
		if [ -n "$busy" ]; then
			decide "keep: heartbeat $quiet, but a GPU is busy (utilization $busy%)"
			exit 0
		fi
		# one "pid, name" line per process (a message, if any, starts with no pid)
		apps=$(printf '%s\n' "$apps" | grep -E '^[[:space:]]*[0-9]+' | head -n 3 | tr '\n' ';')
		if [ -n "$apps" ]; then
			decide "keep: heartbeat $quiet, but GPU compute processes run (${apps%;})"
			exit 0
		fi
		gpu="GPUs idle"
	else
		# a GPU nvidia-smi cannot query is not one a job is using
		gpu="nvidia-smi failed ($(printf '%s' "$util$apps" | head -n 1)), GPUs not counted as busy"
	fi
fi

why="heartbeat $quiet (limit $MINUTES min), 15-minute load $load, $gpu"
if [ "$DRY_RUN" = 1 ]; then
	decide "would deallocate (dry run): $why"
	exit 0
fi

# ---- the deallocation ----

# json_field NAME: the first string value of NAME in the JSON on stdin.
json_field() {
	sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\\([^\"]*\\)\".*/\\1/p" | head -n 1
}

# curl_to VAR ARGS...: run curl; VAR gets the body, $code the HTTP status
# ("000" when there was no answer), $curl_err curl's own message. With $auth
# set, it goes as the bearer token through stdin (printf is a builtin, so no
# command line ever shows it).
curl_to() {
	var=$1
	shift
	if [ -n "${auth:-}" ]; then
		out=$(printf 'Authorization: Bearer %s\n' "$auth" |
			curl -sS --max-time 60 -w '\n%{http_code}' -H @- "$@" 2>"$STATE/curl.err")
	else
		out=$(curl -sS --max-time 60 -w '\n%{http_code}' "$@" 2>"$STATE/curl.err")
	fi
	code=$(printf '%s' "$out" | tail -n 1)
	eval "$var=\$(printf '%s' \"\$out\" | sed '\$d')"
	out=
	curl_err=$(head -n 1 "$STATE/curl.err" 2>/dev/null)
	rm -f "$STATE/curl.err"
	case $code in '' | *[!0-9]*) code=000 ;; esac
}

imds_get() {
	curl_to body --noproxy '*' -H 'Metadata: true' "$IMDS$1"
}

if [ -z "$VM_ID" ]; then
	imds_get "/metadata/instance/compute/resourceId?api-version=2021-02-01&format=text"
	if [ "$code" != 200 ] || [ -z "$body" ]; then
		decide "error: would deallocate ($why), but cannot read the VM's resource id from IMDS ($IMDS): HTTP $code${curl_err:+: $curl_err} (set WAKEFS_WATCHDOG_VM_ID, or run 'vmctl watchdog install' again)"
		exit 1
	fi
	VM_ID=$body
fi

resource=$(printf '%s/' "$ARM" | sed 's/%/%25/g; s/:/%3A/g; s/\//%2F/g')
imds_get "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=$resource"
token=$(printf '%s' "$body" | json_field access_token)
if [ "$code" != 200 ] || [ -z "$token" ]; then
	detail=$(printf '%s' "$body" | json_field error_description)
	[ -n "$detail" ] || detail=$(printf '%s' "$body" | json_field error)
	[ -n "$detail" ] || detail=$curl_err
	body=
	token=
	decide "error: would deallocate ($why), but got no managed identity token from IMDS ($IMDS): HTTP $code${detail:+: $detail} (give the VM a system-assigned identity: az vm identity assign; see vmctl(1))"
	exit 1
fi
body=

auth=$token
token=
curl_to body -X POST -d '' "$ARM$VM_ID/deallocate?api-version=$API_VERSION"
auth=
case $code in
200 | 202 | 204)
	decide "deallocate: $why; ARM accepted the deallocation of $VM_ID (HTTP $code)"
	exit 0
	;;
esac
acode=$(printf '%s' "$body" | json_field code)
amsg=$(printf '%s' "$body" | json_field message)
hint=""
case $code in
401 | 403) hint=" (the VM's managed identity needs Microsoft.Compute/virtualMachines/deallocate/action on the VM, e.g. the Virtual Machine Contributor role: see vmctl(1))" ;;
000) hint=" (is $ARM reachable from the VM?)" ;;
esac
decide "error: deallocating $VM_ID failed ($why): HTTP $code${acode:+: $acode}${amsg:+: $amsg}${curl_err:+: $curl_err}$hint"
exit 1
