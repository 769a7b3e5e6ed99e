"""monitoring/: its files, how apply.sh applies them, and stand-ins for what it talks to."""
