#!/usr/bin/env bash
# One-time (and re-runnable) setup of the project for .github/workflows/deploy.yml, run by a
# project owner, never by the workflow: the service accounts, each with the roles its function
# needs on the resources it touches (docs/security.md, "Least privilege"), the `webhooks`
# Firestore database, and the Workload Identity provider that lets only a `v*` tag's deploy job
# in the `production` environment become the deployer (docs/security.md, "Deploy trust").
# Every command is idempotent; re-running it also removes the wider bindings of earlier setups.
#
#   PROJECT=my-project REGION=us-central1 REPO=my-org/diffio-progress \
#     REPO_ID="$(gh api repos/my-org/diffio-progress --jq .id)" bash deploy/setup.sh
#
# REPO_ID is the repository's numeric id: Workload Identity trusts it as well as the name, so a
# repository deleted and re-created under the same name (by anyone) is not trusted.
#
# Optional: FIRESTORE_LOCATION (default REGION; the webhooks database's location), JOBS_PROJECT
# (where the workers' Cloud Run jobs run; default PROJECT), CLOUD_RUN_LOOKUP=true (the progress
# function may read executions), WEBHOOK_SINK=svix with SVIX_API_TOKEN_SECRET and
# SVIX_TEST_API_TOKEN_SECRET (Secret Manager secret names; created beforehand), KMS_PROJECT and
# KMS_LOCATION (where the key that seals signing secrets lives; default PROJECT and REGION).
set -euo pipefail

: "${PROJECT:?}" "${REGION:?}" "${REPO:?}" "${REPO_ID:?the numeric id of REPO}"
KMS_PROJECT=${KMS_PROJECT:-$PROJECT}
KMS_LOCATION=${KMS_LOCATION:-$REGION}
FIRESTORE_LOCATION=${FIRESTORE_LOCATION:-$REGION}
JOBS_PROJECT=${JOBS_PROJECT:-$PROJECT}
SVIX_API_TOKEN_SECRET=${SVIX_API_TOKEN_SECRET:-svix-api-token}
SVIX_TEST_API_TOKEN_SECRET=${SVIX_TEST_API_TOKEN_SECRET:-svix-test-api-token}
NUMBER=$(gcloud projects describe "$PROJECT" --format='value(projectNumber)')
POOL=projects/$NUMBER/locations/global/workloadIdentityPools/github

account() { echo "diffio-progress-$1@$PROJECT.iam.gserviceaccount.com"; }
RUNTIME=$(account runtime)     # get_generation_progress
WEBHOOKS=$(account webhooks)   # webhooks_configure, _send_test_event, _list_events, ..., _resend
EVENTS=$(account events)       # on_generation_written, on_generation_job_written, their triggers
REAPER=$(account reaper)       # reap_stalled_jobs
RELAY=$(account relay)         # relay_pending_deliveries
SCHEDULER=$(account scheduler) # calls reap_stalled_jobs and relay_pending_deliveries
DEPLOYER=$(account deployer)   # the workflow

gcloud services enable cloudfunctions.googleapis.com run.googleapis.com cloudbuild.googleapis.com \
  artifactregistry.googleapis.com firestore.googleapis.com firebaserules.googleapis.com \
  eventarc.googleapis.com secretmanager.googleapis.com cloudscheduler.googleapis.com \
  iamcredentials.googleapis.com sts.googleapis.com monitoring.googleapis.com \
  logging.googleapis.com firebase.googleapis.com firebasehosting.googleapis.com \
  cloudkms.googleapis.com --project="$PROJECT"

for name in runtime webhooks events reaper relay scheduler deployer; do
  gcloud iam service-accounts describe "$(account $name)" --project="$PROJECT" >/dev/null 2>&1 ||
    gcloud iam service-accounts create "diffio-progress-$name" --project="$PROJECT"
done

# The endpoints and their signing secrets live in their own database (webhooks-api.md §5).
gcloud firestore databases describe --database=webhooks --project="$PROJECT" >/dev/null 2>&1 ||
  gcloud firestore databases create --database=webhooks --location="$FIRESTORE_LOCATION" \
    --type=firestore-native --project="$PROJECT"

# A Firestore role on one database only: an IAM condition on the database's resource name.
on_database() { # MEMBER ROLE DATABASE
  gcloud projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:$1" --role="$2" \
    --condition="expression=resource.name == \"projects/$PROJECT/databases/$3\",title=$3 database only" \
    --quiet >/dev/null
}
on_project() { # MEMBER ROLE [PROJECT]
  gcloud projects add-iam-policy-binding "${3:-$PROJECT}" --member="serviceAccount:$1" \
    --role="$2" --condition=None --quiet >/dev/null
}
# Earlier setups granted these project-wide, without a condition; no identity keeps them.
drop_wide() { # MEMBER ROLE
  gcloud projects remove-iam-policy-binding "$PROJECT" --member="serviceAccount:$1" --role="$2" \
    --condition=None --quiet >/dev/null 2>&1 || true
}
# Earlier setups granted these on a database that the identity no longer writes.
drop_on_database() { # MEMBER ROLE DATABASE
  gcloud projects remove-iam-policy-binding "$PROJECT" --member="serviceAccount:$1" --role="$2" \
    --condition="expression=resource.name == \"projects/$PROJECT/databases/$3\",title=$3 database only" \
    --quiet >/dev/null 2>&1 || true
}
drop_wide "$RUNTIME" roles/datastore.viewer
drop_wide "$EVENTS" roles/datastore.user
drop_wide "$EVENTS" roles/run.invoker
drop_wide "$REAPER" roles/datastore.user
# A role this run does not grant (any more) is taken away, so re-running with a narrower
# choice narrows the grants too.
if [ "${CLOUD_RUN_LOOKUP:-false}" != "true" ]; then
  gcloud projects remove-iam-policy-binding "$JOBS_PROJECT" --member="serviceAccount:$RUNTIME" \
    --role=roles/run.viewer --condition=None --quiet >/dev/null 2>&1 || true
fi

on_database "$RUNTIME" roles/datastore.viewer '(default)'
if [ "${CLOUD_RUN_LOOKUP:-false}" = "true" ]; then
  on_project "$RUNTIME" roles/run.viewer "$JOBS_PROJECT"
fi

on_database "$WEBHOOKS" roles/datastore.viewer '(default)' # the caller's key in apiKeys
on_database "$WEBHOOKS" roles/datastore.user webhooks      # endpoints and their secrets

# The outbox moved to the webhooks database (docs/delivery-storage.md): (default) is read only.
drop_on_database "$EVENTS" roles/datastore.user '(default)'
drop_on_database "$EVENTS" roles/datastore.viewer webhooks
on_database "$EVENTS" roles/datastore.viewer '(default)' # the generation and its jobs
on_database "$EVENTS" roles/datastore.user webhooks      # the outbox, attempts, endpoints
on_project "$EVENTS" roles/eventarc.eventReceiver
# roles/run.invoker on the two event functions alone: the workflow grants it per function.

on_database "$REAPER" roles/datastore.user '(default)'
on_project "$REAPER" roles/run.viewer "$JOBS_PROJECT"

on_database "$RELAY" roles/datastore.user webhooks # the outbox, attempts, endpoints; no (default)
# The scheduler's identity has no project role: the workflow grants roles/run.invoker on the
# reaper and the relay alone.

for pair in "$SVIX_API_TOKEN_SECRET:$EVENTS" "$SVIX_API_TOKEN_SECRET:$RELAY" \
    "$SVIX_API_TOKEN_SECRET:$WEBHOOKS" "$SVIX_TEST_API_TOKEN_SECRET:$WEBHOOKS"; do
  if [ "${WEBHOOK_SINK:-off}" = "svix" ]; then
    gcloud secrets add-iam-policy-binding "${pair%%:*}" --project="$PROJECT" \
      --member="serviceAccount:${pair#*:}" --role=roles/secretmanager.secretAccessor --quiet >/dev/null
  else # no Svix any more: nobody keeps reading its tokens
    gcloud secrets remove-iam-policy-binding "${pair%%:*}" --project="$PROJECT" \
      --member="serviceAccount:${pair#*:}" --role=roles/secretmanager.secretAccessor \
      --quiet >/dev/null 2>&1 || true
  fi
done

# The key that seals the direct sink's signing secrets (docs/security.md, "Signing secrets at
# rest"): only the functions that sign (events, the relay) or seal and test (webhooks) may use
# it; the deploy passes its name as WEBHOOK_SECRETS_KMS_KEY.
KMS=(--project="$KMS_PROJECT" --location="$KMS_LOCATION")
gcloud kms keyrings describe webhook-secrets "${KMS[@]}" >/dev/null 2>&1 ||
  gcloud kms keyrings create webhook-secrets "${KMS[@]}"
gcloud kms keys describe webhook-secrets --keyring=webhook-secrets "${KMS[@]}" >/dev/null 2>&1 ||
  gcloud kms keys create webhook-secrets --keyring=webhook-secrets "${KMS[@]}" \
    --purpose=encryption --rotation-period=90d \
    --next-rotation-time="$(date -u -d '+90 days' +%Y-%m-%dT%H:%M:%SZ)"
on_key() { # MEMBER ROLE
  gcloud kms keys add-iam-policy-binding webhook-secrets --keyring=webhook-secrets "${KMS[@]}" \
    --member="serviceAccount:$1" --role="$2" --quiet >/dev/null
}
on_key "$EVENTS" roles/cloudkms.cryptoKeyDecrypter
on_key "$RELAY" roles/cloudkms.cryptoKeyDecrypter
on_key "$WEBHOOKS" roles/cloudkms.cryptoKeyDecrypter
on_key "$WEBHOOKS" roles/cloudkms.cryptoKeyEncrypter
KMS_KEY=projects/$KMS_PROJECT/locations/$KMS_LOCATION/keyRings/webhook-secrets/cryptoKeys/webhook-secrets

# monitoring.editor and logging.configWriter: the deploy's last step applies monitoring/
# (alert policies, SLOs, dashboards, log-based metrics). firebasehosting.admin publishes the
# routing table (firebase.json's rewrites); firebase-tools first checks that the Hosting API is
# enabled, which needs serviceusage.services.get (serviceUsageConsumer).
for role in roles/cloudfunctions.developer roles/run.admin roles/eventarc.admin \
    roles/cloudscheduler.admin roles/firebaserules.admin roles/datastore.indexAdmin \
    roles/monitoring.editor roles/logging.configWriter roles/firebasehosting.admin \
    roles/serviceusage.serviceUsageConsumer; do
  on_project "$DEPLOYER" "$role"
done
for name in runtime webhooks events reaper relay scheduler; do
  gcloud iam service-accounts add-iam-policy-binding "$(account $name)" --project="$PROJECT" \
    --member="serviceAccount:$DEPLOYER" --role=roles/iam.serviceAccountUser --quiet >/dev/null
done

# Deploy trust: GitHub's OIDC token is accepted only from this repository's deploy.yml run on a
# v* tag in the production environment; any other branch, tag or workflow gets nothing.
ATTRIBUTE_CONDITION="assertion.repository == '$REPO' \
&& assertion.repository_id == '$REPO_ID' \
&& assertion.environment == 'production' \
&& assertion.ref.startsWith('refs/tags/v') \
&& assertion.job_workflow_ref.startsWith('$REPO/.github/workflows/deploy.yml@refs/tags/v')"
MAPPING=google.subject=assertion.sub,attribute.repository=assertion.repository,\
attribute.repository_id=assertion.repository_id,\
attribute.environment=assertion.environment,attribute.ref=assertion.ref
gcloud iam workload-identity-pools describe github --location=global --project="$PROJECT" \
  >/dev/null 2>&1 ||
  gcloud iam workload-identity-pools create github --location=global --project="$PROJECT"
if gcloud iam workload-identity-pools providers describe github --location=global \
    --workload-identity-pool=github --project="$PROJECT" >/dev/null 2>&1; then
  verb=update-oidc
else
  verb=create-oidc
fi
gcloud iam workload-identity-pools providers "$verb" github --location=global \
  --workload-identity-pool=github --project="$PROJECT" \
  --issuer-uri=https://token.actions.githubusercontent.com \
  --attribute-mapping="$MAPPING" --attribute-condition="$ATTRIBUTE_CONDITION"
# The deployer may be impersonated by the production environment's jobs alone (the OIDC
# subject), not by every workflow of the repository as before.
gcloud iam service-accounts remove-iam-policy-binding "$DEPLOYER" --project="$PROJECT" \
  --role=roles/iam.workloadIdentityUser \
  --member="principalSet://iam.googleapis.com/$POOL/attribute.repository/$REPO" \
  --quiet >/dev/null 2>&1 || true
gcloud iam service-accounts add-iam-policy-binding "$DEPLOYER" --project="$PROJECT" \
  --role=roles/iam.workloadIdentityUser \
  --member="principal://iam.googleapis.com/$POOL/subject/repo:$REPO:environment:production" \
  --quiet >/dev/null

echo "Set the repository variables: GCP_PROJECT_ID=$PROJECT GCP_REGION=$REGION"
echo "  GCP_WORKLOAD_IDENTITY_PROVIDER=$POOL/providers/github GCP_DEPLOY_SERVICE_ACCOUNT=$DEPLOYER"
echo "  GCP_RUNTIME_SERVICE_ACCOUNT=$RUNTIME GCP_WEBHOOKS_SERVICE_ACCOUNT=$WEBHOOKS"
echo "  GCP_EVENTS_SERVICE_ACCOUNT=$EVENTS GCP_REAPER_SERVICE_ACCOUNT=$REAPER"
echo "  GCP_SCHEDULER_SERVICE_ACCOUNT=$SCHEDULER WEBHOOK_SECRETS_KMS_KEY=$KMS_KEY"
