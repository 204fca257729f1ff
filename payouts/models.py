"""Models of this app arrive with its issue; the app is installed and migrates now."""
