"""auto-upload: signs and uploads successful Debian builds, each exactly once."""
