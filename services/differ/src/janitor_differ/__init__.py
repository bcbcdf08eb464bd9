"""differ: debdiff and diffoscope of two runs' binary packages."""
