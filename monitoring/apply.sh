#!/usr/bin/env bash
# Apply monitoring/ to a project: create what is missing, change only what differs from what is
# deployed, any number of times. A second run on an unchanged project writes nothing, so an
# absence alert stays armed across deploys (an absence condition re-arms only after its metric
# writes a point following the policy's last change).
#
# Environment:
#   PROJECT_ID          required
#   PAGE_CHANNELS       comma-separated notification channels (projects/P/notificationChannels/ID)
#                       that CRITICAL and ERROR alerts notify; required unless MONITORING_STAGING
#   TICKET_CHANNELS     optional: the same for WARNING alerts
#   MONITORING_STAGING  "true": a staging project, where alerts may notify nobody
#   RUNBOOK_URL         optional: where the alerts' runbook links point; default
#                       docs/runbook.md at this commit on GitHub (GITHUB_* of the workflow)
#   MONITORING_API      optional: the Monitoring API's base URL (tests: a local fake)
#   RETRY_DELAYS        optional: seconds between the tries of a write that answers 404 because
#                       a log metric created in this run is not visible yet; default 5 10 20 40 80
# `apply.sh --check` only checks the channels, before the deploy has credentials.
# Log metrics and the dashboard go through gcloud; the services, SLOs, uptime checks and alert
# policies through the Monitoring API v3 with curl (gcloud has no GA command for them).
# Order matters: alerts read the log metrics, the SLOs and the uptime checks' metrics.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
: "${PROJECT_ID:?PROJECT_ID is required}"
channels() { jq -cn --arg s "$1" '$s | split(",") | map(select(. != ""))'; }
page=$(channels "${PAGE_CHANNELS:-}")
ticket=$(channels "${TICKET_CHANNELS:-}")
if [ "$page" = "[]" ] && [ "${MONITORING_STAGING:-}" != "true" ]; then
  echo "PAGE_CHANNELS is empty: no alert would reach a person. Set the repository variable" \
    "MONITORING_PAGE_CHANNELS, or MONITORING_STAGING=true for a staging project." >&2
  exit 1
fi
[ "${1:-}" != "--check" ] || exit 0
github=${GITHUB_SERVER_URL:-https://github.com}/${GITHUB_REPOSITORY:-diffio/diffio-progress}
RUNBOOK_URL=${RUNBOOK_URL:-$github/blob/${GITHUB_SHA:-main}/docs/runbook.md}
read -r -a delays <<<"${RETRY_DELAYS:-5 10 20 40 80}"
root=${MONITORING_API:-https://monitoring.googleapis.com}/v3
api=$root/projects/$PROJECT_ID
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

render() { # FILE: its text with the placeholders filled in
  sed -e "s|\${PROJECT_ID}|$PROJECT_ID|g" -e "s|\${RUNBOOK_URL}|$RUNBOOK_URL|g" "$1"
}

# eq($w; $h): whether WANT (a file's body) equals HAVE (what is deployed) on every field the file
# sets: what the API adds (name, records, condition names) is ignored, and a field the API
# leaves out holds its proto3 default (0, false, "", [], {}).
eq='
  def dflt: . == null or . == 0 or . == false or . == "" or . == [] or . == {};
  def eq($w; $h):
    if ($w | type) == "object" then
      ($h == null or ($h | type) == "object") and all($w | keys[]; . as $k | eq($w[$k]; $h[$k]))
    elif ($w | type) == "array" then
      ($w | length) == ($h // [] | length) and all(range($w | length); . as $i | eq($w[$i]; $h[$i]))
    elif $h == null then ($w | dflt)
    else $w == $h end;'
same() { # WANT_FILE HAVE_FILE
  jq -en --slurpfile w "$1" --slurpfile h "$2" "$eq"' eq($w[0]; $h[0])' >/dev/null
}

# The token goes to curl in a file, never on a command line.
token=$(gcloud auth print-access-token)
(umask 077 && printf 'Authorization: Bearer %s\n' "$token" >"$work/auth")
call() { # METHOD URL [BODY_FILE]: the response on stdout; an HTTP error fails, saying why
  local args=(--silent --show-error -X "$1" -H @"$work/auth" -o "$work/response")
  local status tries=("${delays[@]}")
  [ $# -lt 3 ] || args+=(-H "Content-Type: application/json" --data-binary @"$3")
  while true; do
    status=$(curl "${args[@]}" --write-out '%{http_code}' "$2")
    # A write naming a log metric created in this run gets 404 until the metric is visible.
    if [ "$status" != 404 ] || [ "$1" = GET ] || [ ${#tries[@]} -eq 0 ]; then break; fi
    echo "$1 ${2#"$root"/} answered 404; again in ${tries[0]} s" >&2
    sleep "${tries[0]}"
    tries=("${tries[@]:1}")
  done
  if [ "${status:0:1}" != 2 ]; then
    echo "$1 ${2#"$root"/} failed: HTTP $status $(cat "$work/response")" >&2
    return 1
  fi
  cat "$work/response"
}
upsert() { # RESOURCE_URL CREATE_URL BODY_FILE: PATCH its fields if they differ, POST if missing
  local status mask
  status=$(curl --silent --output "$work/have.json" --write-out '%{http_code}' \
    -H @"$work/auth" "$1")
  mask=$(jq -r 'del(.name) | keys_unsorted | join(",")' "$3")
  case $status in
    200)
      if same "$3" "$work/have.json"; then
        echo "unchanged ${1#"$api"/}"
        return
      fi
      call PATCH "$1?updateMask=$mask" "$3" >/dev/null
      ;;
    404) call POST "$2" "$3" >/dev/null ;;
    *)
      echo "reading ${1#"$api"/} answered HTTP $status" >&2
      return 1
      ;;
  esac
  echo "applied ${1#"$api"/}"
}
# Resources whose ids the API chooses (alert policies, uptime checks) are found again by a user
# label naming their file, so that a new displayName updates one rather than adding one.
# Channels added to a deployed policy by hand stay: the deployed ones, then the file's.
listed() { # LIST_URL FILE: every resource of the collection, read once, into FILE
  call GET "$1?pageSize=1000" >"$2"
  if [ "$(jq -r '.nextPageToken // ""' "$2")" != "" ]; then
    echo "more than 1000 at ${1#"$root"/}: apply.sh reads one page" >&2
    exit 1
  fi
}
apply_labelled() { # KIND COLLECTION_URL FIELD LABEL LISTED_FILE ID BODY_FILE
  local plan name want
  jq -rc --slurpfile l "$5" --arg f "$3" --arg key "$4" --arg id "$6" "$eq"'
    [$l[0][$f][]? | select(.userLabels[$key]? == $id)] as $found | ($found[0] // {}) as $h
    | (if has("notificationChannels") then .notificationChannels |= (($h.notificationChannels
        // []) + . | reduce .[] as $c ([]; if index([$c]) then . else . + [$c] end)) else . end)
    | (if $found == [] then "new" elif ($found | length) > 1 then "many"
       elif eq(.; $h) then "same" else "differ" end), ([$found[].name] | join(" ")), tojson
  ' "$7" >"$work/plan"
  { read -r plan && read -r name && read -r want; } <"$work/plan"
  printf '%s\n' "$want" >"$work/want.json"
  # No && lists here: errexit ignores a failure in one, and the deploy must stop on it.
  case $plan in
    new) call POST "$2" "$work/want.json" >/dev/null ;;
    many)
      echo "$1s $name all have the label $4=$6; delete all but one" >&2
      exit 1
      ;;
    same)
      echo "unchanged $1 $6"
      return
      ;;
    *) call PATCH "$root/$name" "$work/want.json" >/dev/null ;;
  esac
  echo "applied $1 $6"
}

gcloud logging metrics list --project="$PROJECT_ID" --format=json >"$work/metrics.json"
for file in "$here"/log-metrics/*.json; do
  name=$(basename "$file" .json)
  render "$file" >"$work/$name.json"
  plan=$(jq -r --slurpfile l "$work/metrics.json" --arg n "$name" "$eq"'
    [$l[0][] | select(.name == $n)] as $h
    | if $h == [] then "create" elif eq(.; $h[0]) then "same" else "update" end' "$work/$name.json")
  if [ "$plan" = same ]; then
    echo "unchanged log metric $name"
    continue
  fi
  gcloud logging metrics "$plan" "$name" --project="$PROJECT_ID" \
    --config-from-file="$work/$name.json" --quiet
done

for file in "$here"/services/*.json; do
  id=$(basename "$file" .json)
  render "$file" >"$work/body.json"
  upsert "$api/services/$id" "$api/services?serviceId=$id" "$work/body.json"
done

for file in "$here"/slos/*.json; do
  render "$file" >"$work/body.json"
  name=$(jq -r .name "$work/body.json") # projects/P/services/S/serviceLevelObjectives/ID
  service=${name#*/services/} && service=${service%%/*}
  id=$(basename "$file" .json)
  upsert "$root/$name" \
    "$api/services/$service/serviceLevelObjectives?serviceLevelObjectiveId=$id" "$work/body.json"
done

listed "$api/uptimeCheckConfigs" "$work/checks.json"
for file in "$here"/uptime-checks/*.json; do
  id=$(basename "$file" .json)
  render "$file" | jq --arg id "$id" '.userLabels.check = $id' >"$work/body.json"
  apply_labelled "uptime check" "$api/uptimeCheckConfigs" uptimeCheckConfigs check \
    "$work/checks.json" "$id" "$work/body.json"
done

# CRITICAL and ERROR alerts page; WARNING ones open a ticket.
listed "$api/alertPolicies" "$work/policies.json"
for file in "$here"/alert-policies/*.json; do
  id=$(basename "$file" .json)
  render "$file" | jq --argjson page "$page" --argjson ticket "$ticket" --arg id "$id" \
    '.notificationChannels = (if .severity == "WARNING" then $ticket else $page end)
     | .userLabels.policy = $id' >"$work/body.json"
  apply_labelled "alert policy" "$api/alertPolicies" alertPolicies policy \
    "$work/policies.json" "$id" "$work/body.json"
done

for file in "$here"/dashboards/*.json; do
  render "$file" >"$work/body.json"
  id=$(basename "$file" .json)
  if gcloud monitoring dashboards describe "$id" --project="$PROJECT_ID" --format=json \
    >"$work/have.json" 2>/dev/null; then
    if same "$work/body.json" "$work/have.json"; then
      echo "unchanged dashboard $id"
      continue
    fi
    jq --slurpfile h "$work/have.json" '.etag = $h[0].etag' "$work/body.json" >"$work/dashboard.json"
    gcloud monitoring dashboards update "$id" --project="$PROJECT_ID" \
      --config-from-file="$work/dashboard.json" --quiet
  else
    gcloud monitoring dashboards create --project="$PROJECT_ID" \
      --config-from-file="$work/body.json" --quiet
  fi
done
