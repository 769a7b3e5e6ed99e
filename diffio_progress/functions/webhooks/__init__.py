"""Self-service webhooks: configure, send_test_event, and the delivery log (list, recover, resend)."""
