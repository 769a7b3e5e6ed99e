"""Self-service webhooks: the ``webhooks_configure`` and ``webhooks_send_test_event`` functions."""
