#!/usr/bin/env bash
# Apply monitoring/ to a project: create what is missing, update what exists, any number of times.
#
# Environment:
#   PROJECT_ID             required
#   NOTIFICATION_CHANNELS  optional: comma-separated channel names
#                          (projects/P/notificationChannels/ID) that every alert notifies
#   RUNBOOK_URL            optional: where the alerts' runbook links point; default
#                          docs/runbook.md at this commit on GitHub (GITHUB_* of the workflow)
# Log metrics and the dashboard go through gcloud; the service, its SLOs and the alert
# policies through the Monitoring API v3 with curl (gcloud has no GA command for them).
# Order matters: alerts read the log metrics and the SLOs.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
: "${PROJECT_ID:?PROJECT_ID is required}"
github=${GITHUB_SERVER_URL:-https://github.com}/${GITHUB_REPOSITORY:-diffio/diffio-progress}
RUNBOOK_URL=${RUNBOOK_URL:-$github/blob/${GITHUB_SHA:-main}/docs/runbook.md}
root=${MONITORING_API:-https://monitoring.googleapis.com}/v3
api=$root/projects/$PROJECT_ID
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

render() { # FILE: its text with the placeholders filled in
  sed -e "s|\${PROJECT_ID}|$PROJECT_ID|g" -e "s|\${RUNBOOK_URL}|$RUNBOOK_URL|g" "$1"
}

# The token goes to curl in a file, never on a command line.
token=$(gcloud auth print-access-token)
(umask 077 && printf 'Authorization: Bearer %s\n' "$token" >"$work/auth")
call() { # METHOD URL [BODY_FILE]: the response on stdout; an HTTP error fails, saying why
  local args=(--silent --show-error --fail-with-body -X "$1" -H @"$work/auth")
  [ $# -lt 3 ] || args+=(-H "Content-Type: application/json" --data-binary @"$3")
  if ! curl "${args[@]}" "$2" >"$work/response"; then
    echo "$1 ${2#"$root"/} failed: $(cat "$work/response")" >&2
    return 1
  fi
  cat "$work/response"
}
upsert() { # RESOURCE_URL CREATE_URL BODY_FILE: PATCH its fields if it exists, else POST it
  local status mask
  status=$(curl --silent --output /dev/null --write-out '%{http_code}' -H @"$work/auth" "$1")
  mask=$(jq -r 'del(.name) | keys_unsorted | join(",")' "$3")
  case $status in
    200) call PATCH "$1?updateMask=$mask" "$3" >/dev/null ;;
    404) call POST "$2" "$3" >/dev/null ;;
    *)
      echo "reading ${1#"$api"/} answered HTTP $status" >&2
      return 1
      ;;
  esac
  echo "applied ${1#"$api"/}"
}

for file in "$here"/log-metrics/*.yaml; do
  name=$(basename "$file" .yaml)
  render "$file" >"$work/$name.yaml"
  if gcloud logging metrics describe "$name" --project="$PROJECT_ID" >/dev/null 2>&1; then
    verb=update
  else
    verb=create
  fi
  gcloud logging metrics "$verb" "$name" --project="$PROJECT_ID" \
    --config-from-file="$work/$name.yaml" --quiet
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

# Alert policies get their ids from the API: each is found again by the user label
# `policy`, its file name, so that a new displayName updates it rather than adding one.
channels=$(jq -cn --arg s "${NOTIFICATION_CHANNELS:-}" '$s | split(",") | map(select(. != ""))')
for file in "$here"/alert-policies/*.json; do
  id=$(basename "$file" .json)
  render "$file" | jq --argjson c "$channels" --arg id "$id" \
    '.notificationChannels = $c | .userLabels.policy = $id' >"$work/body.json"
  filter=$(jq -rn --arg f "user_label.policy=\"$id\"" '$f | @uri')
  found=$(call GET "$api/alertPolicies?filter=$filter" | jq -r '[.alertPolicies[]?.name] | join(" ")')
  # No && lists here: errexit ignores a failure in one, and the deploy must stop on it.
  case $found in
    "") call POST "$api/alertPolicies" "$work/body.json" >/dev/null ;;
    *" "*)
      echo "alert policies $found all have the label policy=$id; delete all but one" >&2
      exit 1
      ;;
    *) call PATCH "$root/$found" "$work/body.json" >/dev/null ;;
  esac
  echo "applied alert policy $id"
done

for file in "$here"/dashboards/*.json; do
  render "$file" >"$work/body.json"
  id=$(basename "$file" .json)
  if etag=$(gcloud monitoring dashboards describe "$id" --project="$PROJECT_ID" \
    --format='value(etag)' 2>/dev/null); then
    jq --arg e "$etag" '.etag = $e' "$work/body.json" >"$work/dashboard.json"
    gcloud monitoring dashboards update "$id" --project="$PROJECT_ID" \
      --config-from-file="$work/dashboard.json" --quiet
  else
    gcloud monitoring dashboards create --project="$PROJECT_ID" \
      --config-from-file="$work/body.json" --quiet
  fi
done
