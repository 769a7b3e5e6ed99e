"""Self-service webhooks: configure, send_test_event, the delivery log (list, recover, resend)."""
