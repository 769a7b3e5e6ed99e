"""The benchmark: the function against a floor function, RPCs counted on the wire. Not deployed."""
