"""The demo: its platform file and the commands that run it locally."""
