"""The relay of pending deliveries: Cloud Scheduler calls it; it attempts what is due."""
