"""bzr-store: hosts Bazaar repositories over HTTP with Breezy's smart protocol."""
