"""The console's screens: the review modal, the quit dialog, help."""
