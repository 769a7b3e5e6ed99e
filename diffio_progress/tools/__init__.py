"""The command line and the local world: run, watch, simulate, keys, emulator; never deployed."""
